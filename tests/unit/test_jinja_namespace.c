/* test_jinja_namespace.c — the messages of what jinja2 (with transformers'
 * namespace()) refuses on a namespace: each names the template file and
 * line and says what was asked of a namespace, so that a template author
 * sees why (tests/golden/templates/cases.json checks that mechdiff fails
 * wherever jinja2 raises, and renders the same text everywhere else). Also
 * a namespace that holds itself through a dict and a list prints as
 * Python's repr does, and the loop filter sees the loop variable. */
#include "jinja_check.h"

#define NS "{% set ns = namespace(a=1) %}"

int main(void)
{
    check_err(NS "{{ ns | tojson }}", "tojson: cannot serialise a namespace()");
    check_err(NS "{{ {'k': [ns]} | tojson }}", "cannot serialise a namespace()");
    check_err(NS "{{ ns.items() }}", "a namespace() has no method 'items'");
    check_err(NS "{{ ns | length }}", "filter 'length' cannot take a namespace");
    check_err(NS "{{ ns | map(attribute='a') | list }}", "filter 'map' cannot take a namespace");
    check_err(NS "{{ 'a' in ns }}", "cannot test whether a string is in a namespace");
    check_err(NS "{% for k in ns %}{% endfor %}", "cannot loop over a namespace");
    check_err(NS "{{ ns + 1 }}", "cannot apply '+' to namespace and integer");
    check_err(NS "{% set ns._b = 2 %}", "cannot hold the name '_b'");
    check_err("{{ namespace(_a=1) }}", "cannot hold the name '_a'");
    check_err("{{ namespace({'_a': 1}) }}", "cannot hold the name '_a'");
    check_err(NS "{{ namespace(ns) }}", "namespace() takes a dict or a list of [key, value] pairs, not a namespace");
    check_err("{{ dict(3) }}", "dict() takes a dict or a list of [key, value] pairs, not an integer");
    check_err("{{ namespace([['a']]) }}", "item 0 of the list is not a [key, value] pair");
    check_err("{{ namespace({}, {}) }}", "at most one argument without a name");
    check_err("{% set x = 1 %}{% set x.a = 2 %}", "needs x to be a namespace()");
    /* cycles through a namespace: Python's repr marks the value met again */
    check_ok(NS "{% set d = {'k': ns} %}{% set ns.d = d %}{{ d }} {{ ns }}",
             "{'k': <Namespace {'a': 1, 'd': {...}}>} <Namespace {'a': 1, 'd': {'k': <Namespace {...}>}}>");
    check_ok(NS "{% set ns.l = [ns, [ns]] %}{{ ns.l }}",
             "[<Namespace {'a': 1, 'l': [...]}>, [<Namespace {'a': 1, 'l': [...]}>]]");
    /* a cycle deeper than the scan is not marked: it ends at the nesting bound, with a message */
    check_err("{% set ns = namespace(a=[]) %}{% set ns.a = [ns] %}{% for i in range(70) %}{% set ns.a = [ns.a] %}"
              "{% endfor %}{{ ns }}", "nested more than 512 levels");
    /* the loop filter: the items first, then loop.* counts only those kept */
    check_ok("{% for m in messages + [{'role': 'system'}, {'role': 'user', 'content': 'y'}] if m.role == 'user' %}"
             "{{ loop.index }}/{{ loop.length }} {{ m.content }} {{ loop.last }};{% endfor %}", "1/2 x False;2/2 y True;");
    check_ok("{% for m in messages if m.nope %}{{ m }}{% else %}none{% endfor %}", "none");
    check_ok("{% for m in messages if m.role == 'user' %}{% set n = 1 %}{% endfor %}{{ m is defined }}", "False");
    TEST_MAIN_END();
}
