"""The people list, label filters on leads and people, CSV exports of leads and people."""

import csv
import io
import time
import tracemalloc

from django.urls import reverse

from inbox.models import ExternalAccount
from inbox.services import labels
from leads.models import LeadPost
from tests.factories import ConversationFactory, ExternalAccountFactory, LeadPostFactory


def csv_rows(response) -> list[list[str]]:
    assert response.streaming  # never built in memory
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_people_list_filters_by_label_and_shows_them(auth_client, identity):
    warm = ExternalAccountFactory(external_username="warm_one")
    ExternalAccountFactory(external_username="cold_one")
    label = labels.add_account_label(warm, "<i>warm</i>")

    page = auth_client.get(reverse("leads:people"), {"label": label.pk}).content.decode()

    assert "warm_one" in page and "cold_one" not in page
    assert "&lt;i&gt;warm&lt;/i&gt;" in page and "<i>warm</i>" not in page


def test_the_people_list_takes_a_constant_number_of_queries(auth_client, identity, django_assert_max_num_queries):
    def add(n):
        for _ in range(n):
            account = ExternalAccountFactory()
            labels.add_account_label(account, "x")
            ConversationFactory(counterpart_account=account, identity=identity, provider=identity.provider)

    add(2)
    with django_assert_max_num_queries(12) as few:
        auth_client.get(reverse("leads:people"))
    add(20)
    with django_assert_max_num_queries(12) as many:
        auth_client.get(reverse("leads:people"))
    assert len(few.captured_queries) == len(many.captured_queries)


def test_an_empty_people_list_says_what_fills_it(auth_client, identity):
    page = auth_client.get(reverse("leads:people")).content.decode()
    assert "Nobody yet" in page and reverse("leads:watches") in page and reverse("identities:list") in page
    filtered = auth_client.get(reverse("leads:people"), {"q": "nobody-like-this"}).content.decode()
    assert "Nobody matches these filters" in filtered


def test_an_empty_leads_list_links_to_the_watches(auth_client, identity):
    page = auth_client.get(reverse("leads:list")).content.decode()
    assert "No leads yet" in page and reverse("leads:watches") in page


def test_the_leads_list_filters_by_the_authors_label(auth_client, identity):
    tagged = LeadPostFactory(title="Tagged post")
    LeadPostFactory(title="Other post")
    label = labels.add_account_label(tagged.author_account, "warm")
    page = auth_client.get(reverse("leads:list"), {"label": label.pk}).content.decode()
    assert "Tagged post" in page and "Other post" not in page


def test_the_leads_export_has_the_filtered_leads_with_formula_cells_escaped(auth_client, identity):
    evil = LeadPostFactory(title="=cmd|' /C calc'!A0", status="saved", score=80,
                           score_reasons_json=["-wants a buddy", "nearby"])
    LeadPostFactory(title="ignored one", status="ignored")
    labels.add_account_label(evil.author_account, "@team")

    rows = csv_rows(auth_client.get(reverse("leads:export"), {"status": "saved"}))

    assert rows[0] == ["lead_id", "title", "author", "location", "posted", "status", "score", "top_reason",
                       "author_labels", "post_url"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert row["title"] == "'=cmd|' /C calc'!A0" and row["top_reason"] == "'-wants a buddy"
    assert row["author_labels"] == "'@team" and row["score"] == "80" and row["status"] == "saved"


def test_the_people_export_has_labels_and_notes(auth_client, identity):
    account = ExternalAccountFactory(external_username="+plus_one")
    labels.add_account_label(account, "warm")
    labels.add_note(account, "first note")
    labels.add_note(account, "second note")
    ExternalAccountFactory(external_username="unlabelled")

    rows = csv_rows(auth_client.get(reverse("leads:people_export"), {"label": labels.all_labels().get().pk}))

    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert row["username"] == "'+plus_one" and row["labels"] == "warm"
    assert row["notes"] == "first note\n---\nsecond note"


def test_an_export_with_bad_filters_is_a_400_with_the_reason(auth_client, identity):
    response = auth_client.get(reverse("leads:export"), {"min_score": "lots"})
    assert response.status_code == 400 and "could not be used" in response.content.decode()
    assert auth_client.get(reverse("leads:people_export"), {"label": "999"}).status_code == 400


def test_a_hundred_thousand_people_are_streamed_in_constant_memory(auth_client, identity):
    provider = identity.provider
    ExternalAccount.objects.bulk_create(
        [ExternalAccount(provider=provider, external_username=f"user{n:06d}") for n in range(100_000)],
        batch_size=5000)
    response = auth_client.get(reverse("leads:people_export"))
    assert response.streaming

    tracemalloc.start()
    started = time.monotonic()
    rows = sum(chunk.count(b"\r\n") for chunk in response.streaming_content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert rows == 100_001  # the header and every person
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    print(f"100,000 people exported in {time.monotonic() - started:.1f} s, peak {peak / 1e6:.1f} MB")


def test_a_lead_without_an_author_is_exported_with_an_empty_author(auth_client, identity):
    LeadPost.objects.create(provider=identity.provider, source_location="x", external_post_id="p1",
                            post_url="https://example.invalid/p1", title="orphan")
    rows = csv_rows(auth_client.get(reverse("leads:export")))
    assert dict(zip(rows[0], rows[1]))["author"] == ""
