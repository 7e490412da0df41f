from django import forms
from django.contrib.auth.forms import UserCreationForm

from .actions import MAX_TOKEN_DAYS, password_checks_out
from .models import ApiToken, Twin, User


class SignupForm(UserCreationForm):
    twin_name = forms.CharField(
        max_length=100, required=False, help_text="The name your twin speaks as (defaults to your username)."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="My token", help_text="A label, e.g. the app that uses it.")
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: full access. A token for a chat client needs only “Chat”.",
    )
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=MAX_TOKEN_DAYS, required=False, label="Expires in (days)", help_text="Empty: never."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not user.is_staff:  # the review scope would give anyone else nothing
            self.fields["scopes"].choices = [c for c in ApiToken.Scope.choices if c[0] != ApiToken.Scope.REVIEW]


class TwinForm(forms.ModelForm):
    class Meta:
        model = Twin
        fields = ("name", "auto_train")


class DeleteAccountForm(forms.Form):
    """Deleting everything asks for the password again: a session left open is not enough.
    The check counts against the login lockout, like a sign-in."""

    password = forms.CharField(widget=forms.PasswordInput, strip=False, help_text="Your current password.")

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request, self.user = request, request.user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not password_checks_out(self.request, self.user, password):
            raise forms.ValidationError("That is not your password; nothing was deleted.")
        return password


class PublicationForm(forms.Form):
    """The owner's publication settings; accounts.publication checks and normalizes them."""

    enabled = forms.BooleanField(
        required=False, label="Published", help_text="Anyone with the address may ask your twin."
    )
    slug = forms.SlugField(max_length=60, label="Address", help_text="Your public page is /t/<address>/.")
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Sites that may embed the widget",
        help_text="One per line, e.g. https://blog.example. Your public page here always may.",
    )
    monthly_quota = forms.IntegerField(
        min_value=0, max_value=1_000_000, label="Monthly quota", help_text="Visitor answers per calendar month."
    )

    def clean_allowed_origins(self):
        return self.cleaned_data["allowed_origins"].split()
