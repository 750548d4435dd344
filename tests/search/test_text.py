from search.text import MAX_TERMS, fts_match, segment, snippet, terms


def test_terms_are_plain_words_without_syntax():
    assert terms('"hiking" (buddy) -lake* text:near NEAR/3') == ["hiking", "buddy", "lake", "text", "near", "3"]


def test_terms_are_distinct_case_insensitively_and_capped():
    assert terms("Cat cat CAT dog") == ["Cat", "dog"]
    assert len(terms(" ".join(f"w{i}" for i in range(1000)))) == MAX_TERMS


def test_cjk_runs_become_their_own_terms():
    assert terms("東京2024 Tokyo") == ["東京", "2024", "Tokyo"]


def test_fts_match_quotes_every_term_so_operators_are_words():
    assert fts_match(["cats", "NOT", "dogs"]) == '"cats" OR "NOT" OR "dogs"'
    assert fts_match(["東京"]) == '"東  京"'


def test_segment_spaces_cjk_characters_only():
    assert segment("hello") == "hello"
    assert segment("a東京b") == "a 東  京 b"


def test_snippet_marks_matches_including_inflections_and_keeps_text_plain():
    pieces = snippet("We went <b>hiking</b> and hiked again", ["hike"])
    assert pieces == [("We went <b>", False), ("hiking", True), ("</b> and ", False), ("hiked", True), (" again", False)]


def test_snippet_centres_on_the_first_match_of_a_long_text():
    text = "filler " * 100 + "needle here" + " tail" * 100
    pieces = snippet(text, ["needle"], size=80)
    assert pieces[0] == ("…", False) and pieces[-1] == ("…", False)
    assert ("needle", True) in pieces
    assert sum(len(p) for p, _ in pieces) <= 84


def test_snippet_marks_cjk_substrings():
    assert ("東京", True) in snippet("明日は東京で", ["東京"])


def test_snippet_without_terms_is_the_start_of_the_text():
    assert snippet("short text", []) == [("short text", False)]


def test_keyword_terms_drop_words_that_carry_no_meaning():
    from search.text import keyword_terms

    assert keyword_terms(terms("who offered to lend me a tent?")) == ["offered", "lend", "tent"]
    assert keyword_terms(["the", "who"]) == ["the", "who"]  # nothing else left: still searched


def test_term_coverage_is_the_length_weighted_share_of_query_words_found():
    from search.text import term_coverage

    assert term_coverage("I can lend you my tent", ["lend", "tent"]) == 1.0
    assert term_coverage("a tent for two", ["lend", "tents"]) == 5 / 9
    assert term_coverage("nothing here", ["lend"]) == 0.0
    assert term_coverage("東京で会いましょう", ["東京"]) == 1.0
