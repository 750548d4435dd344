"""Notifications through Apprise, received by a fake JSON webhook (tests/fakes/notify_server.py)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse

from rediska import notify
from rediska.models import Job, Notification
from rediska.tasks import send_notifications

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def event(n: int, kind: str = "reply") -> notify.Event:
    return notify.Event(kind=kind, title=f"New reply from bob{n}", body=f"excerpt {n}", key=f"test:{kind}:{n}",
                        url="/inbox/")


def test_each_event_is_one_message_when_there_is_no_digest(db, fake_notify):
    notify.record(event(1), event(2))
    send_notifications()
    assert fake_notify.titles == ["Rediska: New reply from bob1", "Rediska: New reply from bob2"]
    assert fake_notify.received[0]["message"] == "excerpt 1"
    assert not Notification.objects.filter(sent_at__isnull=True).exists()
    send_notifications()  # nothing pending: nothing sent again
    assert len(fake_notify.received) == 2


def test_recording_queues_the_send_through_the_ledger(db, fake_notify, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        notify.record(event(1))
    assert Job.objects.filter(job_type="notify.send", status=Job.Status.QUEUED).count() == 1


def test_an_event_is_told_once(db, fake_notify):
    assert notify.record(event(1)) == 1
    assert notify.record(event(1)) == 0
    send_notifications()
    assert len(fake_notify.received) == 1


def test_events_not_chosen_and_no_urls_record_nothing(db, fake_notify, settings, django_assert_num_queries):
    settings.NOTIFY_EVENTS = frozenset({"backup"})
    assert notify.record(event(1, "reply"), event(2, "lead")) == 0
    settings.NOTIFY_URLS = []
    with django_assert_num_queries(0):
        assert notify.record(event(3, "backup")) == 0
    assert not Notification.objects.exists()


def test_a_digest_sends_at_most_one_message_per_window_with_everything_since_the_last(db, fake_notify, settings):
    settings.NOTIFY_DIGEST_MINUTES = 30
    with time_machine.travel(T0, tick=False):
        notify.record(event(1), event(2), event(3))
        send_notifications()
    assert len(fake_notify.received) == 1
    digest = fake_notify.received[0]
    assert digest["title"] == "Rediska: 3 updates"
    assert digest["message"].splitlines() == [f"• New reply from bob{n}: excerpt {n}" for n in (1, 2, 3)]

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        notify.record(event(4))
        assert notify.next_send_at() == T0 + timedelta(minutes=30)
        assert send_notifications()["sent"] == 0  # the window is still open
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        notify.record(event(5))
        send_notifications()
    assert len(fake_notify.received) == 1
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        assert send_notifications()["sent"] == 2
    assert len(fake_notify.received) == 2
    assert fake_notify.received[1]["title"] == "Rediska: 2 updates"
    assert "bob4" in fake_notify.received[1]["message"] and "bob5" in fake_notify.received[1]["message"]


def test_events_in_one_digest_window_share_one_send_job(db, fake_notify, settings,
                                                         django_capture_on_commit_callbacks):
    settings.NOTIFY_DIGEST_MINUTES = 10
    with time_machine.travel(T0, tick=False):
        notify.record(event(1))
        send_notifications()
    before = Job.objects.order_by("-pk").values_list("pk", flat=True).first()
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False), django_capture_on_commit_callbacks():
        notify.record(event(2))
        notify.record(event(3))
    waiting = Job.objects.filter(job_type="notify.send", status=Job.Status.QUEUED, pk__gt=before)
    assert waiting.count() == 1
    assert waiting.get().next_run_at == T0 + timedelta(minutes=10)


def test_a_long_digest_is_cut_with_a_count(db, fake_notify, settings):
    settings.NOTIFY_DIGEST_MINUTES = 5
    notify.record(*(event(n) for n in range(notify.DIGEST_MAX_ITEMS + 7)))
    send_notifications()
    assert fake_notify.received[0]["message"].splitlines()[-1] == "… and 7 more (see Today)."


def test_a_refused_send_is_retried_and_nothing_is_lost(db, fake_notify):
    notify.record(event(1))
    fake_notify.fail_next(1)
    with pytest.raises(notify.NotifyError):
        send_notifications()
    job = Job.objects.filter(job_type="notify.send").latest("pk")
    assert job.status == Job.Status.RETRYING
    assert Notification.objects.get().sent_at is None
    send_notifications()
    assert fake_notify.titles == ["Rediska: New reply from bob1"]


def test_excerpts_are_short_single_lines():
    text = notify.excerpt("word " * 100 + "\n\nsecret tail")
    assert len(text) <= notify.EXCERPT and "\n" not in text and text.endswith("…")


# --- the settings page and its test button -----------------------------------------------------


def test_the_test_button_delivers_to_every_url(auth_client, fake_notify):
    response = auth_client.post(reverse("notifications_test"), {"confirm": "True"})
    assert response.status_code == 200
    assert "delivered" in response.content.decode()
    assert fake_notify.titles == ["Rediska test"]
    assert Job.objects.filter(job_type="notify.test", status=Job.Status.DONE).exists()


@pytest.mark.parametrize("bad, message", [
    ("nosuchservice://token@host", "“nosuchservice://” is not a notification service Apprise knows"),
    ("just words", "it is not a URL"),
    ("json://127.0.0.1:1/nowhere", "could not be reached or refused"),
])
def test_the_test_button_says_clearly_what_is_wrong_with_each_url(auth_client, fake_notify, settings, bad, message):
    settings.NOTIFY_URLS = [fake_notify.apprise_url, bad]
    response = auth_client.post(reverse("notifications_test"), {"confirm": "True"})
    page = response.content.decode()
    assert response.status_code == 502
    assert message in page
    assert "URL 1" in page and "delivered" in page  # the good one still got its test
    assert len(fake_notify.received) == 1


def test_the_test_button_never_shows_a_token(auth_client, settings):
    settings.NOTIFY_URLS = ["json://user:hunter2secret@127.0.0.1:1/hook"]
    page = auth_client.post(reverse("notifications_test"), {"confirm": "True"}).content.decode()
    assert "hunter2secret" not in page


def test_the_test_button_without_urls_says_how_to_set_them(auth_client, settings):
    settings.NOTIFY_URLS = []
    response = auth_client.post(reverse("notifications_test"), {"confirm": "True"})
    assert response.status_code == 409 and "NOTIFY_URLS" in response.content.decode()
    assert "Notifications are off" in auth_client.get(reverse("notifications")).content.decode()


def test_the_page_lists_recent_notifications(auth_client, fake_notify):
    notify.record(event(1))
    page = auth_client.get(reverse("notifications")).content.decode()
    assert "New reply from bob1" in page and "waiting" in page


def test_a_malformed_url_fails_the_system_check_without_showing_it(settings):
    settings.NOTIFY_URLS = ["ntfy://fine-topic", "nosuchservice://tok3n@host"]
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "NOTIFY_URLS entry 2 (nosuchservice://…)" in str(caught.value)
    assert "tok3n" not in str(caught.value)
