"""JSON schemas the model's replies must match (sent as `response_format`, then
validated by `rediska.llm`).  Bounded lengths keep a rambling model from filling
the database and the page."""

_SHORT_LIST = {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 10}

PROFILE_SUMMARY = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 3000},
        "signals": {
            "type": "object",
            "properties": {
                "interests": _SHORT_LIST,
                "needs": _SHORT_LIST,
                "location_hints": _SHORT_LIST,
                "activity_pattern": {"type": "string", "maxLength": 500},
                "languages": _SHORT_LIST,
            },
            "required": ["interests", "needs", "location_hints", "activity_pattern", "languages"],
            "additionalProperties": False,
        },
        "risk_flags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "flag": {"type": "string", "minLength": 1, "maxLength": 80},
                    "evidence": {"type": "string", "maxLength": 500},
                },
                "required": ["flag", "evidence"],
                "additionalProperties": False,
            },
            "maxItems": 10,
        },
    },
    "required": ["summary", "signals", "risk_flags"],
    "additionalProperties": False,
}

LEAD_SCORE = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "reasons": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 300},
            "minItems": 1,
            "maxItems": 5,
        },
    },
    "required": ["score", "reasons"],
    "additionalProperties": False,
}

DRAFT = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "maxLength": 100},
        "body": {"type": "string", "minLength": 1, "maxLength": 5000},
    },
    "required": ["subject", "body"],
    "additionalProperties": False,
}
