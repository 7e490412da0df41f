from django.db import migrations


class Migration(migrations.Migration):
    """Keep chunk rows whole in the table instead of in TOAST.

    A row (about 0.8 kB of text, a 1.5 kB vector, about 1 kB of tsvector) is past the
    default 2 kB TOAST threshold, so PostgreSQL moved the vector out of line, and every
    distance an exact search computes cost a TOAST lookup: a 167-row owner's vector
    search took 5 ms instead of 0.7 ms (bench/retrieval.py). Rows up to 8 kB now stay
    inline (a chunk is at most 256 tokens). Existing rows move when next rewritten
    (re-embedding, or VACUUM FULL features_chunk).
    """

    dependencies = [("features", "0003_preference_datasets")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE features_chunk SET (toast_tuple_target = 8160)",
            reverse_sql="ALTER TABLE features_chunk RESET (toast_tuple_target)",
        )
    ]
