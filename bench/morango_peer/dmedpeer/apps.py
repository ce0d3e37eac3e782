from django.apps import AppConfig


class DmedPeerConfig(AppConfig):
    name = "dmedpeer"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Morango's certificate signing asks the signed-in user whether it may request a scope;
        # Django's own User does not say, so the bench's superuser may request any.
        from django.contrib.auth.models import User

        def may_request(user, scope_definition_id, scope_params):
            return user.is_superuser

        User.has_morango_certificate_scope_permission = may_request
