from django.apps import AppConfig


class ApiTokensConfig(AppConfig):
    name = "apps.apitokens"
    label = "apitokens"
    verbose_name = "API tokens"
