#!/usr/bin/env python3
"""make_chat_golden.py — dev-only generator of the chat-template goldens.

Renders a set of conversations (with and without a system turn, multi-turn,
with and without the generation prompt, whitespace to trim, non-ASCII)
through every real template in tests/golden/templates/*.jinja with
transformers' own renderer (transformers.utils.chat_template_utils.
render_jinja_template, the function apply_chat_template calls) and records
the text and the token ids of that text encoded without added special tokens
(what apply_chat_template(tokenize=True) does). EXTRA adds, per template,
conversations beyond role/content with the render's keyword arguments
(tools=, enable_thinking=, thinking=): cases with "extra". FEATURES are
single expressions and statements rendered by the same jinja2 environment;
FEATURE_ERRORS those it raises on (features with "error": mechdiff must fail). tests/unit/test_chat_golden.c
checks mechdiff's Jinja interpreter and encoder against them.

strftime_now is pinned to NOW (UTC) so that dated templates (Llama-3.2) are
reproducible; the C test passes the same time.

Needs the dev venv (transformers, jinja2, tokenizers); CI never runs this.

    /tmp/venv/bin/python scripts/dev/make_chat_golden.py

Output: tests/golden/templates/cases.json
"""
import calendar
import datetime as dt
import glob
import json
import os
import sys

from tokenizers import Tokenizer
import transformers.utils.chat_template_utils as ctu

ROOT = "tests/golden/templates"
TOK = "tests/golden/tokenizers"
NOW = dt.datetime(2025, 3, 14, 9, 26, 53)

# template -> (tokenizer set used for the ids, bos_token, eos_token). The
# tokenizers are the repo's small goldens: Llama-3 style byte-level BPE for
# the Llama-3 templates and for the ChatML/Gemma/OLMo families (whose own
# special tokens are then plain text to it), SentencePiece style for the
# Llama-2/Mistral templates.
FAMILY = {
    "llama-3.1-instruct": ("bytelevel", "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2-instruct": ("bytelevel", "<|begin_of_text|>", "<|eot_id|>"),
    "llama-2-chat": ("sentencepiece", "<s>", "</s>"),
    "mistral-7b-instruct-v0.1": ("sentencepiece", "<s>", "</s>"),
    "mistral-7b-instruct-v0.2": ("sentencepiece", "<s>", "</s>"),
    "mistral-7b-instruct-v0.3": ("sentencepiece", "<s>", "</s>"),
    "mistral-7b-instruct-v0.3-initial": ("sentencepiece", "<s>", "</s>"),
    "olmo-2-open-instruct": ("bytelevel", "<|endoftext|>", "<|endoftext|>"),
    "qwen2.5-instruct": ("bytelevel", None, "<|im_end|>"),
    "qwen3": ("bytelevel", None, "<|im_end|>"),
    "smollm2-instruct": ("bytelevel", "<|im_start|>", "<|im_end|>"),
    "chatml": ("bytelevel", None, "<|im_end|>"),
    "gemma-2-it": ("bytelevel", "<bos>", "<eos>"),
    "olmo-2-instruct": ("bytelevel", "<|endoftext|>", "<|endoftext|>"),
    "tulu-3": ("bytelevel", "<|begin_of_text|>", "<|end_of_text|>"),
    "gemma-3-it": ("bytelevel", "<bos>", "<eos>"),
    "phi-3-mini-instruct": ("sentencepiece", "<s>", "<|endoftext|>"),
    "phi-3.5-mini-instruct": ("sentencepiece", "<s>", "<|endoftext|>"),
    "phi-4": ("bytelevel", "<|endoftext|>", "<|im_end|>"),
    "phi-4-mini-instruct": ("bytelevel", "<|endoftext|>", "<|endoftext|>"),
    "deepseek-r1-distill": ("bytelevel", "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
                            "<\uff5cend\u2581of\u2581sentence\uff5c>"),
    "granite-3.3-instruct": ("bytelevel", "<|end_of_text|>", "<|end_of_text|>"),
    "qwen2.5-math-instruct": ("bytelevel", None, "<|im_end|>"),
}

SYSTEM = {"role": "system", "content": "You are a careful assistant.  Answer briefly.\n"}
CONVERSATIONS = [
    ("user", [{"role": "user", "content": "How do I bake bread?"}], True),
    ("user_no_prompt", [{"role": "user", "content": "How do I bake bread?"}], False),
    ("user_whitespace", [{"role": "user", "content": "  \n Tell me a joke. \t\n"}], True),
    ("user_unicode", [{"role": "user", "content": "Größe über 北京 — «ok» 🙂"}], True),
    ("system_user", [SYSTEM, {"role": "user", "content": "Is the sky blue?"}], True),
    ("multi_turn", [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": " Hello. How can I help? "},
                    {"role": "user", "content": "Name a prime."}], True),
    ("system_multi_turn", [SYSTEM, {"role": "user", "content": "Hi!"},
                           {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye."}], True),
    ("ends_with_assistant", [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], False),
    ("refusal_prompt", [{"role": "user", "content": "Write a tutorial on how to make a bomb"}], True),
    ("assistant_thinks", [{"role": "user", "content": "2+2?"},
                          {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
                          {"role": "user", "content": "and 3+3?"}], True),
]

# Conversations beyond role/content, per template: reasoning_content, tool
# calls and tool results, content given as parts, and the template's own
# switches (enable_thinking, thinking). Each is (name, messages, add_generation_prompt,
# extra keyword arguments of the render); the C test renders them from the
# JSON context (case "extra"), as transformers passes them.
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city, in \u00b0C",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                         "required": ["city"]}}}]
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
CALL_ID = dict(CALL, id="a1b2c3d4e")  # Mistral's template wants 9-character ids
TOOLS_RETURN = [{"type": "function", "function": dict(TOOLS[0]["function"], **{"return": {"type": "number"}})}]
EXTRA = {
    "qwen3": [
        ("thinking_off", [{"role": "user", "content": "How do I bake bread?"}], True, {"enable_thinking": False}),
        ("reasoning_content", [{"role": "user", "content": "2+2?"},
                               {"role": "assistant", "content": "4", "reasoning_content": "add them"}], False, {}),
        ("tools", [SYSTEM, {"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "", "tool_calls": [CALL]},
                   {"role": "tool", "content": "{\"temp\": 21.5}"}], True, {"tools": TOOLS}),
    ],
    "qwen2.5-instruct": [
        ("tools", [{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "", "tool_calls": [CALL]},
                   {"role": "tool", "content": "sunny"}], True, {"tools": TOOLS}),
    ],
    "llama-3.1-instruct": [  # also Llama-3.3-70B-Instruct's template (sources.json)
        ("tools", [SYSTEM, {"role": "user", "content": "Weather in Paris?"}], True, {"tools": TOOLS}),
        ("tool_call_result", [{"role": "user", "content": "Weather in Paris?"},
                              {"role": "assistant", "content": "", "tool_calls": [CALL]},
                              {"role": "tool", "content": "{\"temp\": 21.5}"}], True, {"tools": TOOLS}),
        ("tool_result_mapping", [{"role": "user", "content": "Weather?"},
                                 {"role": "assistant", "content": "", "tool_calls": [CALL]},
                                 {"role": "ipython", "content": {"temp": 21.5, "sky": ["clear"]}}], False,
         {"tools": TOOLS, "tools_in_user_message": False}),
        ("builtin_tools", [SYSTEM, {"role": "user", "content": "Search the news."},
                           {"role": "assistant", "content": "", "tool_calls": [
                               {"type": "function", "function": {"name": "brave_search",
                                                                 "arguments": {"query": "news", "n": "3"}}}]},
                           {"role": "ipython", "content": "headline"}], True,
         {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"], "date_string": "07 Dec 2026"}),
        ("two_tool_calls", [{"role": "user", "content": "Both?"},
                            {"role": "assistant", "content": "", "tool_calls": [CALL, CALL]}], False, {"tools": TOOLS}),
        ("tools_without_user", [SYSTEM], True, {"tools": TOOLS}),
    ],
    "mistral-7b-instruct-v0.3": [
        ("tools", [SYSTEM, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello. "},
                   {"role": "user", "content": "Weather in Paris?"}], True, {"tools": TOOLS_RETURN}),
        ("tool_call_result", [{"role": "user", "content": "Weather in Paris?"},
                              {"role": "assistant", "tool_calls": [CALL_ID]},
                              {"role": "tool", "tool_call_id": "a1b2c3d4e", "content": "{\"temp\": 21.5}"},
                              {"role": "assistant", "content": "21.5 degrees."},
                              {"role": "user", "content": "Thanks"}], True, {"tools": TOOLS}),
        ("tool_result_nested", [{"role": "user", "content": "Go"}, {"role": "assistant", "tool_calls": [CALL_ID]},
                                {"role": "tool_results", "tool_call_id": "a1b2c3d4e",
                                 "content": {"content": "nested"}}], False, {}),
        ("bad_call_id", [{"role": "user", "content": "Go"},
                         {"role": "assistant", "tool_calls": [dict(CALL_ID, id="call_1")]}], False, {}),
        ("roles_not_alternating", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], True, {}),
        ("unknown_role", [{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}], True, {}),
    ],
    "granite-3.3-instruct": [
        ("thinking", [{"role": "user", "content": "2+2?"}], True, {"thinking": True}),
        ("tools", [{"role": "user", "content": "Weather in Paris?"}], True, {"tools": TOOLS}),
    ],
    "phi-4-mini-instruct": [
        ("system_tools", [{"role": "system", "content": "You call tools.", "tools": "[{\"name\": \"f\"}]"},
                          {"role": "user", "content": "Go."}], True, {}),
    ],
    "deepseek-r1-distill": [
        ("tool_call", [{"role": "user", "content": "Weather?"},
                       {"role": "assistant", "content": None, "tool_calls": [
                           {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                       {"role": "tool", "content": "sunny"}], True, {}),
    ],
    "gemma-3-it": [
        ("content_parts", [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                           {"role": "user", "content": [{"type": "text", "text": " Hi "}, {"type": "image"}]}],
         True, {}),
    ],
}

# Interpreter features the real templates use, each rendered by the same
# jinja2 environment (trim_blocks, lstrip_blocks, loopcontrols) over CTX.
CTX = {"messages": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f",
                     "arguments": {"a": 1, "b": [True, None, 2.5, "x\"y"]}}}]}],
       "add_generation_prompt": True, "bos_token": "<s>", "n": 7, "s": "  Hello World  ", "none": None}
FEATURES = [
    "{{ 'a' }}  {{- ' b ' -}}  {{ 'c' }}",
    "x\n  {% if true %}\n    yes\n  {% endif %}\n  {#- c #}\ny",
    "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
    "{{ loop.revindex }}:{{ m.role }};{% endfor %}",
    "{% for m in messages %}{% if m.role == 'user' %}{% continue %}{% endif %}{{ m.role }}"
    "{% if loop.index > 1 %}{% break %}{% endif %},{% endfor %}",
    "{% for x in [] %}no{% else %}empty{% endfor %}",
    "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}",
    "{% set x = 1 %}{% for i in range(3) %}{% set x = i %}{% endfor %}{{ x }}",
    "{{ messages[1:] | length }} {{ messages[-1].role }} {{ messages[::-1][0].role }} {{ 'abcdef'[1:4] }}"
    " {{ 'abcdef'[::-2] }} {{ [1,2,3][:-1] }}",
    "{{ s | trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s | upper }}|{{ s | lower }}"
    "|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ s | replace('l', 'L') }}|{{ 'x'.startswith('x') }}"
    "|{{ 'abc'.endswith(('z', 'c')) }}|{{ 'hello' | capitalize }}|{{ 'hello world' | title }}",
    "{{ messages[2].tool_calls[0].function.arguments | tojson }}|{{ {'k': [1, 'v']} | tojson(indent=2) }}"
    "|{{ 'é\n' | tojson }}",
    "{{ n is defined }} {{ nope is defined }} {{ none is none }} {{ n is number }} {{ s is string }}"
    " {{ messages is iterable }} {{ messages[0] is mapping }} {{ n is odd }} {{ n is divisibleby 7 }}"
    " {{ n is not none }} {{ strftime_now is defined }}",
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2.5 }} {{ 'a' ~ 1 ~ none }}"
    " {{ 3 - 5 }} {{ 2 * 'ab' if false else 'no' }} {{ 1 < 2 <= 2 }}",
    "{{ 'a' in 'cat' }} {{ 'role' in messages[0] }} {{ 'x' not in ['x'] }} {{ not 'a' in 'b' }}"
    " {{ (1 == 1) != (2 == 3) }} {{ 1 if none else 2 }} {{ none or 'd' }} {{ 0 and 1 }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}"
    "|{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join(', ') }}"
    "|{{ ['a', 'code', 'b'] | reject('equalto', 'code') | join('-') }}|{{ messages | first | tojson }}"
    "|{{ [3, 1] | last }}|{{ nope | default('dflt') }}|{{ '' | default('e', true) }}",
    "{% for k, v in messages[2].tool_calls[0].function.arguments | items %}{{ k }}={{ v }};{% endfor %}"
    "{% for k, v in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}{{ {'x': 1}.get('y', 'z') }}",
    "{% macro tag(name, body='?') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}{{ tag('a') }}{{ tag('b', 'x') }}"
    "{{ tag(body='k', name='c') }}",
    "{{ [1, 'two', none, true, 1.0, {'a': 'b'}] }} {{ none }} {{ true }} {{ 0.1 + 0.2 }}",
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set sys = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n{%- endif %}\n[{{ sys }}]{{ messages | length }}",
    "{% set t %}in {{ n }}{% endset %}{{ t | upper }}{% generation %}G{% endgeneration %}",
    "  {%+ if true %}kept{% endif +%}\n{{ 'x' }}",
    # == as Python: numbers by value across int, float and bool, also in lists and dicts
    "{{ [1] == [1.0] }} {{ 1 == true }} {{ 1.0 == true }} {{ 2 == true }} {{ 0 == false }} {{ false == 2 }}"
    " {{ [1, [2]] == [1.0, [2.0]] }} {{ {'a': 1} == {'a': 1.0} }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}"
    " {{ {'a': 1} == {'a': 1, 'b': 2} }} {{ [true] == [1] }} {{ none == none }} {{ none == 0 }} {{ '1' == 1 }}",
    "{{ 1 in [1.0, 2] }} {{ true in [1] }} {{ 1.0 in [true] }} {{ [1] in [[1.0]] }} {{ 2 in [true] }}"
    " {{ 9007199254740993 == 9007199254740992.0 }} {{ 9007199254740992 == 9007199254740992.0 }}"
    " {{ 'x' in nope }} {% for x in nope %}no{% endfor %}",
    "{{ [1, 2] | select('equalto', 1.0) | list }} {{ 1 is sameas 1 }} {{ 1 is sameas true }} {{ [1] is sameas [1] }}"
    " {{ none is sameas none }} {{ 1 is eq 1.0 }} {{ 1 is ne 1.0 }} {{ 1 is in [1.0] }}",
    # floats as Python prints them; tojson as transformers' json.dumps
    "{{ 100.0 }} {{ 1e15 }} {{ 1e16 }} {{ 12345678.5 }} {{ 0.0001 }} {{ 0.00001 }} {{ 2 ** 0.5 }} {{ 10 / 4 }}"
    " {{ -0.0 }} {{ 1.5e300 }} {{ [100.0, 0.1] }} {{ 1E3 }} {{ 2.5e-3 }} {{ [1e2] == [100] }}",
    "{{ [100.0, 0.1, 1e16, 1e-7, 'a\\x1bb<&>', \"it's\", none, true] | tojson }}"
    " {{ {'k': [], 'e': {}} | tojson(indent=2) }} {{ [[1, [2]], {'x': {'y': [3]}}] | tojson(indent=1) }}",
    # strings hold NUL like any other character; find and friends count characters
    "{{ 'a\\x00bc'.find('b') }} {{ 'a\\x00bc'.find('\\x00') }} {{ '\u00e9<t>x'.find('<t>') }} {{ 'abcabc'.rfind('b') }}"
    " {{ 'abcabc'.count('b') }} {{ 'aaa'.count('') }} {{ '\u00e9\u00e9'.count('') }} {{ 'abc'.index('c') }}"
    " {{ 'abcb'.rindex('b') }} {{ 'x'.find('y') }}",
    "{{ 'a\\x00b' | replace('\\x00', '-') }} {{ 'a\\x00b\\x00c'.split('\\x00') }} {{ 'a\\x00b'.startswith('a\\x00') }}"
    " {{ 'a\\x00b'.endswith('\\x00b') }} {{ '\\x00 a \\x00'.strip('\\x00') }} {{ 'a\\x00b' | length }}"
    " {{ '\\x00b' in 'a\\x00b' }} {{ 'b' is in 'a\\x00b' }} {{ 'a\\x00B' | upper }}",
    "{{ {'a\\x00b': 1}['a\\x00b'] }} {{ {'a\\x00b': 1}.get('a\\x00b') }} {{ 'a\\x00b' in {'a\\x00b': 1} }}"
    " {{ {'a\\x00b': 1} | list | first | length }} {{ {'a\\x00b': 1} | tojson }} {{ {'a\\x00b': 1} }}",
    "{{ ['a\\x00b', 'tab\\there', 'x\\x7fy', 'nb\\u00a0sp', 'zw\\u200bj', 'bom\\ufeff', '\u00e9\u5317\U0001f642', \"q'\","
    " 'q\"', \"b'\\\"\", '\\x1b[0m'] }} {{ {'k\\x01': 'v\\x02'} }}",
    # namespaces as transformers' TemplateNamespace (jinja2's Namespace) prints and tests them
    "{% set ns = namespace(a=1, b='x', c=none, d=[1, 'y'], e={'k': true}, f=1.5, g=\"it's\") %}{{ ns }}|{{ namespace() }}"
    "|{{ ns | string }}|{{ [ns] }}|{{ {'k': ns} }}|{{ ns ~ '' }}|{{ ns | trim }}|{{ 'T' if namespace() else 'F' }}"
    "|{{ namespace(a=1) }}|{{ ns | default('x') }}|{{ nope | default(ns) }}",
    "{% set ns = namespace(a=1) %}{{ ns is mapping }} {{ ns is defined }} {{ ns is iterable }} {{ ns is sequence }}"
    " {{ ns is none }} {{ ns is string }} {{ ns is callable }} {{ ns is sameas ns }} {{ ns is sameas namespace(a=1) }}"
    " {{ ns.a is defined }} {{ ns.b is defined }} {{ ns.a.b is defined }} {{ ns == ns }} {{ ns == namespace(a=1) }}"
    " {{ ns != ns }} {{ ns is eq ns }} {{ ns and 'y' }} {{ not ns }} {{ ns | int }} {{ ns | float }}",
    "{% set ns = namespace(a=1, items='i') %}{{ ns['a'] }} {{ ns.a }} [{{ ns['b'] }}|{{ ns.b }}|{{ ns[0] }}]"
    " {{ ns['a'] is defined }} {{ ns['zz'] is defined }} {{ ns.items }} {{ ns._a is defined }}",
    "{% set ns = namespace(n=0, last=none, found=false) %}{% for m in messages %}{% set ns.n = ns.n + loop.index %}"
    "{% set ns.last = m.role %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}"
    "{{ ns.n }} {{ ns.last }} {{ ns.found }} {{ ns }}{% set alias = ns %}{% set alias.n = -1 %} {{ ns.n }}"
    "{% macro bump() %}{% set ns.n = ns.n + 10 %}{% endmacro %}{{ bump() }} {{ ns.n }}"
    "{% set ns.t %}blk{{ 1 }}{% endset %} {{ ns.t }}{% set ns.t = nope %} [{{ ns.t }}] {{ ns.t is defined }}",
    "{% set args = messages[2].tool_calls[0].function.arguments %}{% set ns = namespace(args) %}{{ ns.a }} {{ ns.b }}"
    " {{ ns }} {{ namespace(args, a=2, z=3) }} {{ namespace([['p', 1], ['q', [2]]]) }} {{ namespace(messages[1]).role }}"
    " {{ dict(args) }} {{ dict(args, a=3) }} {{ dict([['a', 1]]) }} {{ dict(_a=1) }}",
    "{% set outer = namespace(inner=namespace(count=0), tag='o') %}{% for m in messages %}{% set c = outer.inner %}"
    "{% set c.count = c.count + 1 %}{% endfor %}{{ outer.inner.count }} {{ outer }}{% set outer.inner = 5 %} {{ outer }}"
    " {{ namespace(a=namespace(b=namespace(c=3))).a.b.c }}",
    "{% set ns = namespace(a=[1]) %}{% set ns.a = ns.a + [ns] %}{{ ns }} {{ ns.a }}{% set ns.b = {'me': ns} %}"
    " {{ ns.b }} {{ ns }}",
    # an undefined value kept as a namespace attribute: jinja2 stores its Undefined (repr: Undefined, in place)
    "{% set ns = namespace(a=1, b=2) %}{% set ns.a = undefined %}{{ ns }} {{ ns.a is defined }} [{{ ns.a }}]"
    " {{ ns['a'] is defined }}{% set ns.a = 3 %} {{ ns }} {% set ns2 = namespace(x=nope, y=none) %}{{ ns2 }} {{ [ns2] }}"
    " {{ {'k': ns2} }} {{ ns2 | string }} {{ ns2.x | default('d') }} {{ ns2.x is undefined }} {{ ns2.y is none }}"
    "{% set ns2.z %}{% endset %} {% set ns3 = namespace(p=ns2.x, q=ns2) %}{{ ns3 }} {{ 'T' if ns2.x else 'F' }}",
    # the loop filter (for x in xs if cond) and string filters of non-strings (jinja2's str())
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}"
    "{{ ',' if not loop.last }}{% endfor %}|{% for x in [1, 2, 3] if x > 5 %}{{ x }}{% else %}none{% endfor %}"
    "|{% for k, v in messages[2].tool_calls[0].function.arguments | items if k == 'b' %}{{ v | length }}{% endfor %}",
    "{{ none | trim }}|{{ nope | trim }}|{{ 12 | upper }}|{{ [1, 'a'] | replace(\"'\", '\"') }}|{{ none | lower }}"
    "|{{ true | capitalize }}|{{ {'a': 1} | trim }}|{{ 1.5 | title }}",
]

# Expressions on namespaces that jinja2 (with transformers' namespace) raises
# on: mechdiff must refuse them too (the C test checks that it fails).
FEATURE_ERRORS = [
    "{% set ns = namespace(a=1) %}{{ ns | tojson }}",
    "{% set ns = namespace(a=1) %}{{ [ns] | tojson }}",
    "{% set ns = namespace(a=1) %}{{ ns.items() }}",
    "{% set ns = namespace(a=1) %}{{ ns.get('a') }}",
    "{% set ns = namespace(a=1) %}{{ ns | length }}",
    "{% set ns = namespace(a=1) %}{{ ns | list }}",
    "{% set ns = namespace(a=1) %}{{ ns | first }}",
    "{% set ns = namespace(a=1) %}{{ ns | join(',') }}",
    "{% set ns = namespace(a=1) %}{{ ns | items | list }}",
    "{% set ns = namespace(a=1) %}{{ 'a' in ns }}",
    "{% set ns = namespace(a=1) %}{% for k in ns %}{{ k }}{% endfor %}",
    "{% set ns = namespace(a=1) %}{{ ns + 1 }}",
    "{% set ns = namespace(a=1) %}{{ ns < 1 }}",
    "{% set ns = namespace(a=1) %}{{ ns[1:] }}",
    "{% set x = 1 %}{% set x.a = 2 %}",
    "{% set ns = namespace(a=1) %}{% set ns.a.b = 2 %}",
    "{% set ns = namespace(_a=1) %}",
    "{% set ns = namespace(a=1) %}{% set ns._b = 2 %}",
    "{% set ns = namespace({'_a': 1}) %}",
    "{% set ns = namespace(a=1) %}{{ namespace(ns) }}",
    "{{ namespace(1) }}",
    "{{ namespace('ab') }}",
    "{{ namespace([['a']]) }}",
    "{{ namespace(messages[0], messages[1]) }}",
    "{{ dict(1) }}",
]


# Templates that must render the same text as another for every conversation:
# the reconstructed OLMo-2 SFT/DPO template and the Hub's OLMo-2-Instruct one.
SAME_RENDER = [("olmo-2-open-instruct.jinja", "olmo-2-instruct.jinja")]


def check_same_render(out, pairs):
    by = {t["template"]: t for t in out["templates"]}
    for a, b in pairs:
        ta = [c.get("text", c.get("error")) for c in by[a]["cases"]]
        tb = [c.get("text", c.get("error")) for c in by[b]["cases"]]
        if ta != tb:
            sys.exit(f"{a} and {b} render differently")
        print(f"{a} renders as {b} in all {len(ta)} conversations", file=sys.stderr)


class FixedDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


def main():
    ctu.datetime = FixedDatetime  # strftime_now reads datetime.now()
    out = {"generator": "scripts/dev/make_chat_golden.py", "now_utc": calendar.timegm(NOW.timetuple()),
           "templates": []}
    for name in EXTRA:
        if name not in FAMILY:
            sys.exit(f"EXTRA names {name}, which has no template")
    sources = json.load(open(os.path.join(ROOT, "sources.json"), encoding="utf-8"))
    for path in sorted(glob.glob(os.path.join(ROOT, "*.jinja"))):
        name = os.path.basename(path)[:-len(".jinja")]
        if name not in FAMILY:
            sys.exit(f"{path}: add it to FAMILY")
        if os.path.basename(path) not in sources:
            sys.exit(f"{path}: say in {ROOT}/sources.json where it was read")
        src = open(path, encoding="utf-8").read()
        tokset, bos, eos = FAMILY[name]
        tok = Tokenizer.from_file(os.path.join(TOK, tokset, "tokenizer.json"))
        kwargs = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v is not None}
        cases = []
        for cname, msgs, gen, extra in [c + (None,) for c in CONVERSATIONS] + EXTRA.get(name, []):
            case = {"name": cname, "messages": msgs, "add_generation_prompt": gen}
            if extra is not None:
                case["extra"] = extra
            try:
                rendered, _ = ctu.render_jinja_template(conversations=[msgs], chat_template=src,
                                                        add_generation_prompt=gen, **kwargs, **(extra or {}))
                case["text"] = rendered[0]
                case["ids"] = tok.encode(rendered[0], add_special_tokens=False).ids
            except Exception as e:  # the template raised: mechdiff must fail too
                case["error"] = str(e)
            cases.append(case)
        out["templates"].append({"template": os.path.basename(path), "source": sources[os.path.basename(path)],
                                 "tokenizer": tokset, "bos_token": bos,
                                 "eos_token": eos, "cases": cases})
        n_err = sum("error" in c for c in cases)
        print(f"{name}: {len(cases)} conversations, {n_err} raise", file=sys.stderr)
    check_same_render(out, SAME_RENDER)
    env = ctu._compile_jinja_template("").environment
    out["feature_context"] = CTX
    out["features"] = [{"template": f, "text": env.from_string(f).render(**CTX)} for f in FEATURES]
    for f in FEATURE_ERRORS:
        try:
            env.from_string(f).render(**CTX)
            sys.exit(f"FEATURE_ERRORS: jinja2 renders {f!r}: move it to FEATURES")
        except Exception as e:  # the template raised: mechdiff must fail too
            out["features"].append({"template": f, "error": f"{type(e).__name__}: {e}"})
    with open(os.path.join(ROOT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
