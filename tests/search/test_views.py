import pytest

from search import services
from tests.factories import IdentityFactory, LeadPostFactory, MessageFactory

pytestmark = pytest.mark.django_db
URL = "/search/"


def index(kind, *objs):
    services.upsert_content(kind, [o.pk for o in objs])


def test_the_search_page_needs_a_signed_in_user(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_page_has_one_box_filters_and_live_results(auth_client):
    index("message", MessageFactory(body_text="hello"))
    html = auth_client.get(URL).content.decode()
    assert 'type="search"' in html and 'name="q"' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html and 'hx-push-url="true"' in html
    for name in ("identity", "provider", "doc_type", "location", "date_from", "date_to", "include_hidden", "include_deleted"):
        assert f'name="{name}"' in html
    assert 'for="id_q"' in html and 'action="/search/"' in html


def test_results_show_escaped_text_with_highlighted_matches(auth_client):
    index("message", MessageFactory(body_text="<script>alert(1)</script> bring the lantern"))
    html = auth_client.get(URL, {"q": "lantern"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "<mark>lantern</mark>" in html
    assert "Messages" in html and "1 result for" in html


def test_htmx_requests_get_only_the_results_fragment(auth_client):
    index("message", MessageFactory(body_text="compass"))
    response = auth_client.get(URL, {"q": "compass"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "<mark>compass</mark>" in html


def test_the_identity_filter_in_the_page_keeps_other_identities_out(auth_client):
    mine, theirs = IdentityFactory(), IdentityFactory()
    a = MessageFactory(conversation__identity=mine, body_text="secret recipe one")
    b = MessageFactory(conversation__identity=theirs, body_text="secret recipe two")
    index("message", a, b)
    html = auth_client.get(URL, {"q": "recipe", "identity": mine.pk}).content.decode()
    assert "<mark>recipe</mark> one" in html and "<mark>recipe</mark> two" not in html


def test_hidden_items_appear_only_with_the_include_hidden_box(auth_client):
    from django.utils import timezone

    m = MessageFactory(body_text="hidden treasure", deleted_at=timezone.now())
    index("message", m)
    assert "<mark>treasure</mark>" not in auth_client.get(URL, {"q": "treasure"}).content.decode()
    html = auth_client.get(URL, {"q": "treasure", "include_hidden": "on"}).content.decode()
    assert "<mark>treasure</mark>" in html and "hidden</span>" in html


def test_type_and_location_filters_narrow_results(auth_client):
    index("message", MessageFactory(body_text="chess club"))
    index("lead_post", LeadPostFactory(title="chess club", source_location="boardgames"), LeadPostFactory(title="chess club", source_location="other"))
    html = auth_client.get(URL, {"q": "chess", "doc_type": "lead_post", "location": "boardgames"}).content.decode()
    assert "1 result for" in html and "boardgames" in html


@pytest.mark.parametrize("query", ['"', "(((", "*", "-", "NEAR(", "AND OR NOT", "text:x", "a" * 10_000, "東京", "مرحبا"])
def test_awkward_queries_get_an_answer_not_an_error(auth_client, query):
    index("message", MessageFactory(body_text="東京 مرحبا text"))
    response = auth_client.get(URL, {"q": query})
    assert response.status_code == 200


def test_cjk_and_arabic_queries_find_their_text(auth_client):
    index("message", MessageFactory(body_text="明日は東京で会いましょう"), MessageFactory(body_text="هل تريد الذهاب إلى المكتبة"))
    assert "<mark>東京</mark>" in auth_client.get(URL, {"q": "東京"}).content.decode()
    assert "<mark>المكتبة</mark>" in auth_client.get(URL, {"q": "المكتبة"}).content.decode()


def test_an_over_long_query_gets_a_clear_message(auth_client):
    response = auth_client.get(URL, {"q": "a" * 10_001})
    assert response.status_code == 400 and "Keep the query under 10,000 characters." in response.content.decode()


def test_a_backwards_date_range_gets_a_clear_message(auth_client):
    response = auth_client.get(URL, {"q": "x", "date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert response.status_code == 400 and "The end date is before the start date." in response.content.decode()


def test_bad_filters_in_live_results_are_shown_in_the_fragment(auth_client):
    response = auth_client.get(URL, {"q": "x", "identity": "999999", "date_from": "not a date"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "Please correct the search" in html and "Enter a valid date." in html


def test_an_empty_query_shows_the_newest_items(auth_client):
    index("message", MessageFactory(body_text="latest news"))
    html = auth_client.get(URL).content.decode()
    assert "Newest items" in html and "latest news" in html


def test_a_missing_index_shows_how_to_build_it(auth_client):
    response = auth_client.get(URL, {"q": "anything"})
    assert response.status_code == 200 and "search_reindex" in response.content.decode()


def test_search_by_meaning_end_to_end_through_the_fake_embeddings_server(auth_client, fake_llm):
    from rediska.models import Job
    from search.tasks import generate

    wanted = MessageFactory(body_text="looking for a hiking buddy this weekend")
    other = MessageFactory(body_text="selling my old car")
    index("message", wanted, other)
    (job,) = Job.objects.filter(job_type="embed.generate")
    generate(*job.payload_json["args"])
    html = auth_client.get(URL, {"q": "trekking companion"}).content.decode()
    assert "hiking buddy" in html and "old car" not in html.split("hiking buddy")[0]
    assert 'title="Found by meaning (embeddings)"' in html


def test_an_empty_index_without_a_query_says_what_fills_it(auth_client):
    services.upsert_content("message", [])  # the index exists, with nothing in it
    html = auth_client.get(URL).content.decode()
    assert "Nothing indexed yet" in html and "/leads/watches/" in html and 'href="/identities"' in html
