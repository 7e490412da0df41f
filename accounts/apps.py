from django.apps import AppConfig
from django.db.models.signals import post_save


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and twins"

    def ready(self):
        from .sharing import on_user_saved

        # An invitation by email waits for the address to sign up (accounts/sharing.py).
        post_save.connect(on_user_saved, sender=self.get_model("User"), dispatch_uid="bind_email_invitations")
