from django.contrib.auth import views as auth_views
from django.urls import path

from . import publication_views, sharing_views, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        # a form: GET shows it, POST signs in (Django's view would also take PUT as a POST)
        auth_views.LoginView.as_view(template_name="accounts/login.html", http_method_names=["get", "head", "post"]),
        name="login",
    ),
    # POST only: Django's view also answers OPTIONS, which no route of the site takes
    path("logout/", auth_views.LogoutView.as_view(http_method_names=["post"]), name="logout"),
    path("account/twin/", views.twin_settings, name="twin-settings"),
    path("account/delete/", views.delete_account, name="delete-account"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke-token"),
    path("sharing/", sharing_views.sharing, name="sharing"),
    path("sharing/invitations/<int:access_id>/revoke/", sharing_views.revoke_invitation, name="sharing-revoke"),
    path("sharing/invitations/<int:access_id>/group/", sharing_views.move_invitation, name="sharing-move"),
    path("sharing/groups/add/", sharing_views.add_group, name="sharing-add-group"),
    path("sharing/groups/<int:group_id>/rename/", sharing_views.rename_group, name="sharing-rename-group"),
    path("sharing/groups/<int:group_id>/revoke/", sharing_views.revoke_group, name="sharing-revoke-group"),
    path("sharing/groups/<int:group_id>/delete/", sharing_views.delete_group, name="sharing-delete-group"),
    path("sharing/publication/", publication_views.publication, name="publication"),
    path("sharing/publication/rotate-key/", publication_views.rotate_key, name="publication-rotate-key"),
]
