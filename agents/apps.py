from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self):
        # The core LLM client cannot import apps: agents records its calls through a hook.
        from rediska.llm import add_call_listener

        from .services import record_llm_call

        add_call_listener(record_llm_call)
