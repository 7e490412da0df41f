"""The staff-only hyperparameter form: one field per Hyperparameters field, checked by its rules."""

from dataclasses import fields

from django import forms

from .experiments import MAX_TRIALS
from .hyperparameters import KNOWN_TARGET_MODULES, SCHEDULES, Hyperparameters
from .models import Experiment


class HyperparametersForm(forms.Form):
    def __init__(self, *args, initial_hp: Hyperparameters | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        initial = (initial_hp or Hyperparameters()).as_dict()
        for spec in fields(Hyperparameters):
            name, value = spec.name, initial[spec.name]
            if name == "target_modules":
                field = forms.MultipleChoiceField(choices=[(m, m) for m in KNOWN_TARGET_MODULES])
            elif name == "lr_schedule":
                field = forms.ChoiceField(choices=[(s, s) for s in SCHEDULES])
            elif spec.type in (bool, "bool"):
                field = forms.BooleanField(required=False)
            elif spec.type in (int, "int"):
                field = forms.IntegerField()
            else:
                field = forms.FloatField()
            field.initial = value
            self.fields[name] = field

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        for name, message in Hyperparameters.from_dict(cleaned).errors().items():
            self.add_error(name, message)
        return cleaned

    def hyperparameters(self) -> dict:
        return Hyperparameters.from_dict(self.cleaned_data).as_dict()


SWEEPABLE = ("learning_rate", "lora_r", "lora_alpha", "lora_dropout", "epochs", "batch_size", "max_seq_len", "seed")


class ExperimentForm(forms.Form):
    """A sweep: comma-separated values for the hyperparameters to vary (the rest keep their defaults)."""

    search = forms.ChoiceField(choices=Experiment.Search.choices)
    trials = forms.IntegerField(
        required=False, min_value=2, max_value=MAX_TRIALS, help_text="Random search: how many runs."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SWEEPABLE:
            self.fields[name] = forms.CharField(required=False, help_text="e.g. 1e-4, 4e-4")

    def clean(self):
        cleaned = super().clean()
        types = {spec.name: spec.type for spec in fields(Hyperparameters)}
        space = {}
        for name in SWEEPABLE:
            raw = [v.strip() for v in (cleaned.get(name) or "").split(",") if v.strip()]
            convert = int if types[name] in (int, "int") else float
            try:
                space[name] = [convert(v) for v in raw]
            except ValueError:
                self.add_error(name, f"Enter numbers separated by commas ({convert.__name__} values).")
        cleaned["space"] = {name: values for name, values in space.items() if values}
        return cleaned
