"""The staff-only hyperparameter form: one field per Hyperparameters field, checked by its rules."""

from dataclasses import fields

from django import forms

from .hyperparameters import KNOWN_TARGET_MODULES, SCHEDULES, Hyperparameters


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
