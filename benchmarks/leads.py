"""Benchmark leads ingestion against the fake provider server, rate limits off.

    .venv/bin/python benchmarks/leads.py [--posts 10000] [--profiles 1000]

Browses one location of `--posts` posts (pages of 100, the provider's maximum)
into `lead_posts`, then fetches `--profiles` counterparts (about data, 5 posts
and 10 comments each, one in five with an image downloaded into a temporary
ATTACHMENTS_PATH) through the same services the Celery tasks call.  Prints
posts/s and profiles/s.  The fake server runs in this process, so its own work
is part of the figures (they are a floor, not a ceiling).

Runs on a fresh SQLite file by default; with MYSQL_URL set it creates (and then
drops) a scratch `test_<name>` database on that server.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

# First: it sets the environment up and calls django.setup().
from _django import fake_provider, scratch_database
from django.db import connection
from PIL import Image


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (seed % 256, (seed // 256) % 256, 90)).save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--profiles", type=int, default=1_000)
    args = parser.parse_args()

    images = {"PROVIDER_REDDIT_MEDIA_HOSTS": "127.0.0.1", "ATTACHMENT_ALLOW_HTTP": True}
    with scratch_database(), fake_provider(**images) as fake:
        from identities.services import connect_identity, session_for
        from inbox.models import ExternalAccount
        from leads import services
        from leads.models import LeadPost, ProfileItem
        from rediska.providers.base import RemoteAccount

        identity = connect_identity(provider_id="reddit", refresh_token=fake.issue_refresh_token("scout"),
                                    account=RemoteAccount(username="scout"))
        session = session_for(identity)

        for n in range(args.posts):
            fake.add_post("benchhiking", f"poster{n % 2000}", title=f"Looking for a hiking buddy #{n}",
                          selftext="Weekend trips, moderate pace, happy to share the driving. " * 3)
        started = time.perf_counter()
        result = services.browse_location(session, provider_id="reddit", location="benchhiking",
                                          limit=args.posts)
        browse_s = time.perf_counter() - started
        assert result.created == args.posts == LeadPost.objects.count(), result

        names = [f"person{n}" for n in range(args.profiles)]
        for n, name in enumerate(names):
            fake.add_user(name, link_karma=n, comment_karma=2 * n, bio=f"Bio of {name}")
            for p in range(5):
                image = fake.add_image(f"/img/{n}.png", png(n)) if p == 0 and n % 5 == 0 else None
                fake.add_post("benchtravel", name, title=f"{name} trip {p}", selftext="Photos and notes.",
                              image_url=image)
            for c in range(10):
                fake.add_comment(name, "benchtravel", f"Comment {c} by {name}: sounds great, count me in.")
        accounts = services.upsert_authors("reddit", names)
        started = time.perf_counter()
        for name in names:
            account = accounts[name.lower()]
            services.fetch_profile(session, account)
            services.fetch_profile_items(session, ExternalAccount.objects.get(pk=account.pk), limit=100)
        profiles_s = time.perf_counter() - started
        items = ProfileItem.objects.count()
        images = ProfileItem.objects.filter(item_type="image").count()
        expected_images = len(range(0, args.profiles, 5))
        assert items == args.profiles * 15 + expected_images and images == expected_images, (items, images)

        print(f"database: {connection.vendor}")
        print(f"browse:   {args.posts} posts in {result.pages} pages, {browse_s:.2f} s "
              f"-> {args.posts / browse_s:,.0f} posts/s")
        print(f"profiles: {args.profiles} profiles ({items} items, {images} images downloaded) in "
              f"{profiles_s:.2f} s -> {args.profiles / profiles_s:,.1f} profiles/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
