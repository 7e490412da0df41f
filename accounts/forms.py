from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Twin, User


class SignupForm(UserCreationForm):
    twin_name = forms.CharField(
        max_length=100, required=False, help_text="The name your twin speaks as (defaults to your username)."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="My token", help_text="A label, e.g. the app that uses it.")


class TwinForm(forms.ModelForm):
    class Meta:
        model = Twin
        fields = ("name", "auto_train")
