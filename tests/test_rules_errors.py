"""A bad rules file is refused with every problem on its exact line, in an admin's words."""

from __future__ import annotations

import pytest

from mailticket.decide.rules import parse_rules, validate
from mailticket.decide.yamlsource import load_located
from mailticket.errors import ConfigError

GOOD = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  security: {agents: [oncall@example.com], escalate_to: lead@example.com}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h, remind_every: 30m}
  normal: {first_response: 24h}
rules:
  - name: account security
    if:
      any:
        - subject: {contains: [hacked, 被盗]}
        - body: {matches: '(?i)unauthori[sz]ed (login|transfer)'}
    then: {queue: security, priority: urgent, tags: [security]}
    stop: true
  - name: big customer
    if: {from: {domain: [bigcustomer.example]}}
    then: {priority: urgent, assign: lead@example.com, extract: {order: 'order (?P<n>\\d+)'}}
tests:
  - mail: {from: a@bigcustomer.example, subject: 账户被盗}
    expect: {queue: security, priority: urgent}
"""


def problems(text: str) -> list[str]:
    ruleset, found = validate(load_located(text, "rules.yaml"), text.encode())
    assert (ruleset is None) == bool(found)
    return [p.text for p in found]


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_good_file_is_valid() -> None:
    assert problems(GOOD) == []
    assert [r.name for r in parse_rules(GOOD).spec.rules] == ["account security", "big customer"]


# (old text, new text, the one problem expected)
SINGLE = [
    (
        "  urgent: {first_response: 2h, remind_every: 30m}",
        "  urgent: {first_response: 2h, remind_every: 30 minutes}",
        "rules.yaml:7: priorities.urgent.remind_every: not a duration: '30 minutes' (write e.g. 45s, 30m, 8h, 3d)",
    ),
    (
        "  normal: {first_response: 24h}",
        "  normal: {first_respons: 24h}",
        "rules.yaml:8: priorities.normal: unknown key 'first_respons' (did you mean 'first_response'?)",
    ),
    (
        "  normal: {first_response: 24h}",
        "  normal: {remind_every: 1h}",
        "rules.yaml:8: priorities.normal: missing key 'first_response'",
    ),
    (
        "{agents: [agent@example.com]}",
        "{agents: [agent.example.com]}",
        "rules.yaml:3: queues.general.agents[1]: not an email address: 'agent.example.com'",
    ),
    (
        "escalate_to: lead@example.com}",
        "escalate_to: lead}",
        "rules.yaml:4: queues.security.escalate_to: not an email address: 'lead'",
    ),
    (
        "defaults: {queue: general, priority: normal}",
        "defaults: {queue: generel, priority: normal}",
        "rules.yaml:5: defaults.queue: unknown queue 'generel' (known: general, security)",
    ),
    (
        "defaults: {queue: general, priority: normal}",
        "defaults: {queue: general, priority: high}",
        "rules.yaml:5: defaults.priority: unknown priority 'high' (known: normal, urgent)",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - subject: {contain: [hacked, 被盗]}",
        "rules.yaml:13: rule 'account security': if.any[1].subject: unknown key 'contain' (did you mean 'contains'?)",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - subjet: {contains: [hacked, 被盗]}",
        "rules.yaml:13: rule 'account security': if.any[1]: unknown key 'subjet' (did you mean 'subject'?)",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - subject: {}",
        "rules.yaml:13: rule 'account security': if.any[1].subject: give a test: contains, matches or equals",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - subject: {domain: example.com}",
        "rules.yaml:13: rule 'account security': if.any[1].subject: unknown key 'domain' (not allowed here)",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - subject: {contains: [hacked, no]}",
        "rules.yaml:13: rule 'account security': if.any[1].subject.contains[2]: should be text, not False: quote it (YAML reads yes/no/on/off as true/false)",
    ),
    (
        "        - subject: {contains: [hacked, 被盗]}",
        "        - {}",
        "rules.yaml:12: rule 'account security': if.any: item 1 is an empty condition",
    ),
    (
        "      any:\n",
        "      any: []\n      all:\n",
        "rules.yaml:12: rule 'account security': if.any: should not be empty",
    ),
    (
        "'(?i)unauthori[sz]ed (login|transfer)'",
        "'(?i)unauthori[sz]ed (login|transfer'",
        "rules.yaml:14: rule 'account security': if.any[2].body.matches[1]: bad regex '(?i)unauthori[sz]ed (login|transfer': missing ): (?i)unauthori[sz]ed (login|transfer",
    ),
    (
        "'(?i)unauthori[sz]ed (login|transfer)'",
        "'(?<!not )unauthorized'",
        "rules.yaml:14: rule 'account security': if.any[2].body.matches[1]: regex '(?<!not )unauthorized' is not supported: invalid perl operator: (?<! (look-behind is not available; mailticket uses RE2 so matching time stays linear in the mail's size)",
    ),
    (
        "'(?i)unauthori[sz]ed (login|transfer)'",
        "'(a)\\1'",
        "rules.yaml:14: rule 'account security': if.any[2].body.matches[1]: regex '(a)\\1' is not supported: invalid escape sequence: \\1 (back-references and this escape are not available; mailticket uses RE2 so matching time stays linear in the mail's size)",
    ),
    (
        "    then: {queue: security, priority: urgent, tags: [security]}",
        "    then: {queue: securty, priority: urgent, tags: [security]}",
        "rules.yaml:15: rule 'account security': then.queue: unknown queue 'securty' (known: general, security)",
    ),
    (
        "    then: {queue: security, priority: urgent, tags: [security]}",
        "    then: {queue: security, priority: critical, tags: [security]}",
        "rules.yaml:15: rule 'account security': then.priority: unknown priority 'critical' (known: normal, urgent)",
    ),
    (
        "    then: {queue: security, priority: urgent, tags: [security]}",
        "    then: {queue: security, priority: urgent, tags: [needs review]}",
        "rules.yaml:15: rule 'account security': then.tags[1]: 'needs review': use letters, digits, '_', '-' or '.', no spaces",
    ),
    (
        "    then: {queue: security, priority: urgent, tags: [security]}",
        "    than: {queue: security}",
        "rules.yaml:15: rule 'account security': unknown key 'than' (did you mean 'then'?)",
    ),
    (
        "    stop: true\n",
        "    stop: maybe\n",
        "rules.yaml:16: rule 'account security': stop: should be true or false",
    ),
    (
        "assign: lead@example.com,",
        "assign: the lead,",
        "rules.yaml:19: rule 'big customer': then.assign: not an email address: 'the lead'",
    ),
    (
        "extract: {order: 'order (?P<n>\\d+)'}",
        "extract: {order: 'x*'}",
        "rules.yaml:19: rule 'big customer': then.extract.order: regex 'x*' matches an empty text: it would extract nothing",
    ),
    (
        "  - name: big customer\n",
        "  - nme: big customer\n",
        "rules.yaml:17: rule 2: unknown key 'nme' (did you mean 'name'?)",
    ),
    (
        "    if: {from: {domain: [bigcustomer.example]}}",
        "    if: {from: {domain: [big customer]}}",
        "rules.yaml:18: rule 'big customer': if.from.domain[1]: not a domain: 'big customer' (write e.g. example.com)",
    ),
    (
        "    if: {from: {domain: [bigcustomer.example]}}",
        "    if: {language: chinese}",
        "rules.yaml:18: rule 'big customer': if.language: not a language code: 'chinese' (write e.g. zh or en)",
    ),
    (
        "    expect: {queue: security, priority: urgent}",
        "    expect: {queue: sec, priority: urgent}",
        "rules.yaml:22: test 1: expect.queue: unknown queue 'sec' (known: general, security)",
    ),
    (
        "  - mail: {from: a@bigcustomer.example, subject: 账户被盗}\n",
        "  - file: x.eml\n    mail: {subject: x}\n",
        "rules.yaml:21: test 1: give either `mail:` or `file:`",
    ),
    ("version: 1\n", "version: 1\ncolour: blue\n", "rules.yaml:2: unknown key 'colour'"),
]


@pytest.mark.parametrize(("old", "new", "expected"), SINGLE)
def test_one_problem_on_its_line(old: str, new: str, expected: str) -> None:
    assert problems(edit(old, new)) == [expected]


def test_every_problem_is_reported_in_line_order_and_the_first_is_raised() -> None:
    text = edit("remind_every: 30m", "remind_every: soon")
    text = edit(
        "queue: security, priority: urgent, tags", "queue: nowhere, priority: urgent, tags", text
    )
    text = edit("assign: lead@example.com", "assign: lead", text)
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["7", "15", "19"]
    with pytest.raises(ConfigError) as caught:
        parse_rules(text)
    assert str(caught.value) == found[0]


def test_yaml_syntax_error_names_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^rules\.yaml:3: "):
        parse_rules("version: 1\nqueues:\n  general: {agents: [a@b.example}\n")


def test_not_a_mapping() -> None:
    assert problems("- just\n- a list\n") == [
        "rules.yaml:1: the file must be a mapping (version: 1, queues: ...)"
    ]


def test_defaults_left_out_need_a_general_queue() -> None:
    text = "queues:\n  support: {}\n"
    assert problems(text) == ["rules.yaml:1: defaults.queue 'general' is not a queue"]


SHADOW_HEAD = GOOD.split("rules:\n")[0] + "rules:\n"


def test_a_rule_after_a_stop_rule_without_if_never_runs() -> None:
    text = SHADOW_HEAD + (
        "  - name: everything\n"
        "    then: {queue: security}\n"
        "    stop: true\n"
        "  - name: later\n"
        "    if: {subject: {contains: x}}\n"
        "    then: {priority: urgent}\n"
    )
    assert problems(text) == [
        "rules.yaml:13: rule 'later' can never run: rule 'everything' (line 10) "
        "has `stop: true` and matches every mail (no `if`)"
    ]


def test_a_rule_with_the_same_condition_as_an_earlier_stop_rule_never_runs() -> None:
    text = SHADOW_HEAD + (
        "  - name: first\n"
        "    if: {subject: {contains: [a, b]}}\n"
        "    stop: true\n"
        "  - name: unrelated\n"
        "    if: {subject: {contains: c}}\n"
        "    then: {tags: [c]}\n"
        "  - name: copy\n"
        "    if:\n"
        "      subject:\n"
        "        contains: [a, b]\n"
        "    then: {tags: [x]}\n"
    )
    assert problems(text) == [
        "rules.yaml:16: rule 'copy' can never run: rule 'first' (line 10) "
        "has `stop: true` and has the same condition"
    ]


def test_same_condition_without_stop_is_fine() -> None:
    text = SHADOW_HEAD + (
        "  - name: first\n    if: {subject: {contains: a}}\n    then: {tags: [a]}\n"
        "  - name: second\n    if: {subject: {contains: a}}\n    then: {tags: [b]}\n"
    )
    assert problems(text) == []


def test_shadowing_is_found_even_when_another_part_of_the_file_is_bad() -> None:
    text = edit("remind_every: 30m", "remind_every: soon", SHADOW_HEAD) + (
        "  - name: everything\n    then: {queue: security}\n    stop: true\n"
        "  - name: later\n    then: {priority: urgent}\n"
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["7", "13"]
    assert "rule 'later' can never run" in found[1]


def test_duplicate_rule_names() -> None:
    text = SHADOW_HEAD + (
        "  - name: twin\n    then: {tags: [a]}\n  - name: twin\n    then: {tags: [b]}\n"
    )
    assert problems(text) == [
        "rules.yaml:12: rule 'twin': the name is already used by the rule at line 10"
    ]


def test_a_rule_that_does_nothing() -> None:
    text = SHADOW_HEAD + "  - name: idle\n    if: {subject: {contains: a}}\n"
    assert problems(text) == [
        "rules.yaml:10: rule 'idle': the rule does nothing: give `then:` or `stop: true`"
    ]


# a file that names no queue routes nowhere: refused, never read as the built-in defaults
EMPTY = [
    ("", "rules.yaml:1: the file is empty (version: 1, queues: ...)"),
    ("# only comments\n\n# here\n", "rules.yaml:1: the file is empty (version: 1, queues: ...)"),
    ("{}\n", "rules.yaml:1: the file is empty (version: 1, queues: ...)"),
    ("~\n", "rules.yaml:1: the file is empty (version: 1, queues: ...)"),
    ("version: 1\n", "rules.yaml:1: missing key 'queues'"),
    ("version: 1\nrules: []\n", "rules.yaml:1: missing key 'queues'"),
    ("version: 1\nqueues: {}\n", "rules.yaml:2: queues: should not be empty"),
    ("version: 1\nqueues:\n# none yet\n", "rules.yaml:2: queues: should be a mapping (key: value)"),
]


@pytest.mark.parametrize(("text", "expected"), EMPTY)
def test_a_file_without_queues_is_refused(text: str, expected: str) -> None:
    assert problems(text) == [expected]
    with pytest.raises(ConfigError) as caught:
        parse_rules(text)
    assert str(caught.value) == expected
