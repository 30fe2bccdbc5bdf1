"""AWS Chatbot's custom-notification event schema, as its documentation gives it.

"Custom notifications using Amazon Q Developer in chat applications"
(docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html): ``version`` "1.0" and
``source`` "custom" are required; ``id``; ``content`` with ``textType`` (only
"client-markdown"), ``title``, ``description``, ``nextSteps`` and ``keywords`` (lists of
strings); ``metadata`` with ``threadId``, ``summary``, ``eventType``, ``relatedResources``
(strings) and ``additionalContext`` (string to string). Written out here rather than taken
from orch's code, so a test compares orch with the documentation, not with itself.
"""

from __future__ import annotations

from typing import Any

STRING_LISTS = ("nextSteps", "keywords")


def documented_shape_problems(doc: Any) -> list[str]:
    """Everything in ``doc`` the documented event schema does not allow."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["not an object"]
    if doc.get("version") != "1.0":
        problems.append("version must be 1.0")
    if doc.get("source") != "custom":
        problems.append("source must be custom")
    problems += [f"unknown top-level key {k}" for k in set(doc) - {"version", "source", "id", "content", "metadata"}]
    if "id" in doc and not isinstance(doc["id"], str):
        problems.append("id must be a string")
    content = doc.get("content", {})
    problems += [f"unknown content key {k}" for k in set(content) - {"textType", "title", "description", *STRING_LISTS}]
    if "textType" in content and content["textType"] != "client-markdown":
        problems.append("only client-markdown textType is supported")
    for key in ("title", "description"):
        if key in content and not isinstance(content[key], str):
            problems.append(f"content.{key} must be a string")
    for key in STRING_LISTS:
        if key in content and not (isinstance(content[key], list) and all(isinstance(s, str) for s in content[key])):
            problems.append(f"content.{key} must be a list of strings")
    metadata = doc.get("metadata", {})
    allowed = {"threadId", "summary", "eventType", "relatedResources", "additionalContext"}
    problems += [f"unknown metadata key {k}" for k in set(metadata) - allowed]
    for key in ("threadId", "summary", "eventType"):
        if key in metadata and not isinstance(metadata[key], str):
            problems.append(f"metadata.{key} must be a string")
    resources = metadata.get("relatedResources", [])
    if not (isinstance(resources, list) and all(isinstance(r, str) for r in resources)):
        problems.append("metadata.relatedResources must be a list of strings")
    context = metadata.get("additionalContext", {})
    if not (isinstance(context, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in context.items())):
        problems.append("metadata.additionalContext must map strings to strings")
    return problems
