"""Template fields in flow texts: parsing, validation messages and rendering."""

from __future__ import annotations

import pytest

from bot.templating import TemplateError, TemplateField, fields, problems, render

NO_DEFAULTS: dict[str, str] = {}


def fill(template: str, **customer: str | None) -> str:
    return render(
        template,
        customer=customer,
        context={"order_id": "#A-1001"},
        context_defaults={"order_id": "your order", "ticket_id": "your request"},
    )


def test_fields_lists_placeholders_with_fallbacks() -> None:
    found = fields("Hi {customer.first_name|there}, about {context.order_id}.")
    assert found == [
        TemplateField("customer.first_name", "there"),
        TemplateField("context.order_id", None),
    ]
    assert found[0].namespace == "customer"
    assert found[0].key == "first_name"
    assert str(found[0]) == "{customer.first_name|there}"


def test_fields_ignores_escaped_braces() -> None:
    assert fields("Use {{braces}} and }} freely") == []


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("Hi {customer.first_name", "unclosed '{' at character 4"),
        ("Hi } there", "single '}' at character 4"),
        ("Hi {customer.{x}}", "'{' inside a field at character 14"),
        ("Hi {} there", "empty field '{}' at character 4"),
        ("Hi { |x} there", "empty field '{ |x}'"),
    ],
)
def test_malformed_braces_raise(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        fields(template)
    assert fragment in str(info.value)


def test_problems_reports_unknown_and_undeclared_fields() -> None:
    messages = problems(
        "{customer.email} {user.name} {context.order_id} {context.coupon} {customer.name}",
        context_keys={"order_id"},
    )
    assert messages == [
        "unknown template field {customer.email}; use customer.first_name, customer.last_name,"
        " customer.name or context.KEY",
        "unknown template field {user.name}; use customer.first_name, customer.last_name,"
        " customer.name or context.KEY",
        "template field {context.coupon} uses context key 'coupon', which the flow's [context]"
        " table does not declare",
    ]


def test_problems_reports_malformed_braces() -> None:
    assert problems("Hi {customer.first_name", context_keys=()) == [
        "unclosed '{' at character 4: 'Hi {customer.first_name'"
    ]


def test_problems_empty_for_good_template() -> None:
    assert problems("Hi {customer.first_name|there} {{x}}", context_keys=()) == []


def test_render_customer_fields() -> None:
    assert fill("Hi {customer.first_name}!", first_name="Ana") == "Hi Ana!"
    assert fill("{customer.name}", first_name="Ana", last_name="Lopez") == "Ana Lopez"
    assert fill("{customer.last_name}", last_name="Lopez") == "Lopez"


def test_render_derives_first_name_from_full_name() -> None:
    assert fill("Hi {customer.first_name}!", name="Ana María Lopez") == "Hi Ana!"


def test_render_uses_fallback_for_missing_or_blank_values() -> None:
    assert fill("Hi {customer.first_name|there}!") == "Hi there!"
    assert fill("Hi {customer.first_name|there}!", first_name="  ") == "Hi there!"
    assert fill("Hi {customer.first_name|there}!", first_name=None) == "Hi there!"


def test_render_missing_field_without_fallback_tidies_space() -> None:
    assert fill("Hi {customer.first_name}!") == "Hi!"
    assert fill("Hi {customer.first_name}, welcome back.") == "Hi, welcome back."
    assert fill("Thanks {customer.first_name} for writing.") == "Thanks for writing."
    assert fill("{customer.first_name} thanks") == "thanks"
    assert fill("Hi {customer.first_name} {customer.last_name}!") == "Hi!"
    assert fill("Hi {customer.first_name} {customer.last_name}!", last_name="Lopez") == (
        "Hi Lopez!"
    )


def test_render_leaves_spacing_elsewhere_alone() -> None:
    # Only the gap left by the empty field is tidied, not the author's own spacing.
    assert fill("Merci {customer.first_name} !  A bientôt") == "Merci !  A bientôt"


def test_render_context_value_then_fallback_then_declared_default() -> None:
    assert fill("About {context.order_id}.") == "About #A-1001."
    assert fill("About {context.ticket_id}.") == "About your request."
    assert fill("About {context.ticket_id|that}.") == "About that."


def test_render_escaped_braces() -> None:
    assert fill("{{literal}} {customer.first_name}", first_name="Bo") == "{literal} Bo"


def test_render_unknown_field_raises() -> None:
    with pytest.raises(TemplateError, match=r"unknown template field \{user\.name\}"):
        render("{user.name}", customer={}, context={}, context_defaults=NO_DEFAULTS)
