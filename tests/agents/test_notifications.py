"""A lead scored at or above NOTIFY_LEAD_MIN_SCORE is told once."""

from agents.tasks import lead_scoring
from rediska.models import Notification
from rediska.tasks import send_notifications
from tests.factories import LeadPostFactory


def test_a_lead_above_the_chosen_score_is_told_with_its_top_reason(db, fake_llm, fake_notify, settings):
    settings.NOTIFY_LEAD_MIN_SCORE = 70
    good = LeadPostFactory(title="Hiking buddy wanted in the Alps")
    plain = LeadPostFactory(title="Selling boots")
    fake_llm.reply_json({"score": 85, "reasons": ["Wants a partner for June", "Alps"]})
    lead_scoring(good.pk)
    fake_llm.reply_json({"score": 40, "reasons": ["Just selling"]})
    lead_scoring(plain.pk)
    fake_llm.reply_json({"score": 90, "reasons": ["Rescored"]})
    lead_scoring(good.pk)  # a rescore does not tell it again
    send_notifications()
    [message] = fake_notify.received
    assert message["title"] == "Rediska: Lead scored 85: Hiking buddy wanted in the Alps"
    assert message["message"] == "Wants a partner for June"
    assert Notification.objects.get().url == f"/leads/{good.pk}/"
