/* test_jinja_limits.c — the Jinja interpreter on the inputs fuzz_chat_template
 * found: integer arithmetic as Python does it where it fits in 64 bits and a
 * message naming the template and line where it does not (no wrap-around,
 * no SIGFPE), integer literals beyond 64 bits, range() and slices with
 * extreme bounds, and the budgets that stop a template from running for
 * minutes or filling memory (loop steps, string and list sizes, work in
 * all, output), and a namespace that holds itself (a reference cycle). */
#include "jinja_check.h"

int main(void)
{
    /* Python's integer semantics where the result fits */
    check_ok("{{ -7 // 2 }} {{ -7 % 2 }} {{ 7 // -2 }} {{ 7 % -2 }} {{ 7 // 2 }}", "-4 1 -4 -1 3");
    check_ok("{{ 2 ** 62 }} {{ 3 ** 39 }} {{ (-2) ** 63 }} {{ 0 ** 0 }}",
             "4611686018427387904 4052555153018976267 -9223372036854775808 1");
    check_ok("{{ 9223372036854775807 }} {{ -9223372036854775807 - 1 }} {{ (-9223372036854775807 - 1) // 1 }}",
             "9223372036854775807 -9223372036854775808 -9223372036854775808");
    check_ok("{{ (-9223372036854775807 - 1) % -1 }} {{ true + true }}", "0 2");
    check_ok("{{ 1 // 0.5 }} {{ 7 % 0.5 }} {{ 7.5 // 2 }} {{ 2 ** -1 }}", "2.0 0.0 3.0 0.5");
    /* fuzz_chat_template: 1 // 0.5 divided by the integer part of 0.5 (SIGFPE);
     * int + - * ** wrapped around (undefined behaviour) */
    check_err("{{ 9223372036854775807 + 1 }}", "integer overflow: 9223372036854775807 + 1 is beyond 64 bits");
    check_err("{{ -9223372036854775807 - 2 }}", "integer overflow");
    check_err("{{ 3333333333 * 3333333333 }}", "integer overflow");
    check_err("{{ 2 ** 63 }}", "integer overflow: 2 ** 63");
    check_err("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow");
    check_err("{{ -(-9223372036854775807 - 1) }}", "integer overflow");
    check_err("\n{{ 99999999999999999999 }}", ":2: the integer 99999999999999999999 is beyond 64 bits");
    check_err("{{ 1 // 0 }}", "division by zero");
    /* range() and slices at the ends of the integers */
    check_ok("{{ range(9223372036854775806, 9223372036854775807, 5) | list }}", "[9223372036854775806]");
    check_ok("{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904) | list }}",
             "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]");
    check_ok("{{ range(5, -5, -4) | list }} {{ range(3) | list }} {{ range(3, 3) | list }}", "[5, 1, -3] [0, 1, 2] []");
    check_ok("{{ 'abc'[1::9223372036854775807] }}|{{ 'abc'[::-9223372036854775807 - 1] }}|{{ 'abcde'[::-2] }}",
             "b|c|eca");
    /* the budget: loops and range() items, 2^20 in all */
    check_err("{{ range(100000000) | length }}", "range(0, 100000000, 1) makes 100000000 items");
    check_ok("{{ range(1048576) | length }}", "1048576");
    check_err("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "more than 1048576");
    check_ok("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok", "ok");
    /* strings and lists that double each step: 16 MiB a value, 2^28 bytes and items in all */
    check_err("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
              "a string longer than 16 MiB");
    check_err("{% set ns = namespace(s=[1,2]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
              "a list of more than 2^20 items");
    check_err("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('x', 'xx') %}"
              "{% endfor %}", "a string longer than 16 MiB");
    check_err("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s|tojson %}{% endfor %}",
              "a string longer than 16 MiB");
    /* tojson's indent as Python's json.dumps: negative is 0 (newlines only);
     * a huge one stops at the text limit (it asked for gigabytes of spaces) */
    check_ok("{{ [1, [2]]|tojson(indent=-1) }}", "[\n1,\n[\n2\n]\n]");
    check_err("{{ [[[1]]]|tojson(indent=2000000000) }}", "a string longer than 16 MiB");
    check_err("{% set ns = namespace(s='') %}{% for i in range(500000) %}{% set ns.s = ns.s ~ 'abcdefghij' %}"
              "{% endfor %}", "more than 2^28 bytes");
    /* a list nested 40 deep with shared items (2^40 leaves): printed, joined, serialised */
    const char *dag = "{% set ns = namespace(a=['xxxxxxxx']) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
                      "{% endfor %}{% set a = ns.a %}";
    char src[512];
    snprintf(src, sizeof src, "%s{{ a }}", dag);
    check_err(src, "more than 16 MiB of text");
    snprintf(src, sizeof src, "%s{{ a|tojson|length }}", dag);
    check_err(src, "a string longer than 16 MiB");
    snprintf(src, sizeof src, "%s{{ a|join(',') }}", dag);
    check_err(src, "a string longer than 16 MiB");
    /* a namespace that holds itself (a reference cycle: LeakSanitizer found the leak) */
    check_ok("{% set ns = namespace(a=[1]) %}{% set ns.a = ns.a + [ns] %}{{ ns.a|length }}", "2");
    check_ok("{% set ns = namespace(a=[1, 2]) %}{% set b = ns.a + [3] %}{{ ns.a }} {{ b }} {{ [1]|tojson }}",
             "[1, 2] [1, 2, 3] [1]");
    /* == and the walks over nested values: two distinct lists that share items 40 levels deep (2^40 leaves
     * each; Python too compares them leaf by leaf) were compared for hours; now every walk shares a budget */
    const char *dags = "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
                       "{% set ns.b = [ns.b, ns.b] %}{% endfor %}{% set a = ns.a %}{% set b = ns.b %}";
    static const char *const walks[] = {"{{ a == b }}", "{{ a != b }}", "{{ a in [0, b] }}", "{{ a is equalto b }}",
                                        "{{ a is in [b] }}", "{{ [a, b] | select('equalto', b) | list | length }}",
                                        "{{ [a] | reject('ne', b) | list | length }}", "{{ {'k': a} == {'k': b} }}"};
    for (size_t i = 0; i < sizeof walks / sizeof walks[0]; i++) {
        snprintf(src, sizeof src, "%s%s", dags, walks[i]);
        check_err(src, "the template is too expensive: comparing, printing or nesting its values walks more than "
                       "4194304 lists and dicts");
    }
    snprintf(src, sizeof src, "%s{{ a == a }} {{ a in [1, a] }} {{ [a] == [a] }}", dags); /* identity first, as Python */
    check_ok(src, "True True True");
    /* nesting: lists and dicts nest at most 512 deep (Jansson frees recursively: 500 000 levels crashed) */
    check_ok("{% set ns = namespace(a=[], b=[]) %}{% for i in range(511) %}{% set ns.a = [ns.a] %}"
             "{% set ns.b = [ns.b] %}{% endfor %}{{ ns.a|tojson|length }} {{ ns.a == ns.b }} {{ (ns.a ~ '')|length }}",
             "1024 True 1024");
    check_err("{% set ns = namespace(a=[]) %}{% for i in range(500000) %}{% set ns.a = [ns.a] %}{% endfor %}",
              "a value nested more than 512 levels deep");
    check_err("{% set ns = namespace(a={}) %}{% for i in range(600) %}{% set ns.a = {'k': ns.a} %}{% endfor %}",
              "nested more than 512 levels deep");
    check_err("{% set ns = namespace(a={}) %}{% for i in range(600) %}{% set ns.a = dict(k=ns.a) %}{% endfor %}",
              "nested more than 512 levels deep");
    /* default without a value on an undefined variable (fuzz_chat_template: '{%set e=a|d%}' leaked the "") */
    check_ok("{% set e = a|d %}[{{ e }}]{{ b|default }}{{ c|default('y') }}{{ 'x'|d('z') }}", "[]yx");
    TEST_MAIN_END();
}
