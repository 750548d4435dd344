"""`{% job_llm_calls job %}`: the model calls a job made and what it produced, for the
core job page (which cannot import the apps)."""

from django import template

from ..models import LLMCall

register = template.Library()

# Keys of the agent tasks' results, and the page each one points to.
_PRODUCED = (
    ("snapshot_id", "agents:snapshot_detail", "Profile snapshot"),
    ("draft_id", "agents:draft_detail", "Draft"),
    ("lead_post_id", "agents:lead_panel", "Lead score"),
)


@register.inclusion_tag("agents/_job_calls.html")
def job_llm_calls(job):
    result = job.result_json if isinstance(job.result_json, dict) else {}
    produced = [
        (url_name, label, result[key])
        for key, url_name, label in _PRODUCED
        if job.status == "done" and isinstance(result.get(key), int)
    ]
    calls = list(LLMCall.objects.filter(job=job).defer("request_json", "response_text").order_by("id"))
    return {"job": job, "calls": calls, "produced": produced}
