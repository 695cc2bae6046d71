// Unit tests of the Jinja engine. The expected strings in kCases were produced by Python jinja2
// 3.1 configured as transformers configures it (tests/reference/render_template.py), so each row
// pins one feature to the reference behaviour.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "text/jinja/template.h"

namespace gemma_local::jinja {
namespace {

struct Case {
  const char* tmpl;
  const char* context;  // JSON object
  const char* expected;
};

const Case kCases[] = {
    {R"jx({{ 1 + 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 1.5 * 2 }})jx",
     R"jx({})jx", R"jx(3|3|-4|1|2|3.5|1024|3.0)jx"},
    {R"jx({{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }})jx", R"jx({})jx",
     R"jx(a1NoneTrue|ababab|[1, 2])jx"},
    {R"jx({{ none }}|{{ true }}|{{ 1.0 }}|{{ 1e-7 }}|{{ 1e16 }}|{{ 123456789.123 }}|{{ 0.1 + 0.2 }}|{{ [1, 'a', none, 1.5] }}|{{ {'k': 'v', 'n': [1]} }})jx",
     R"jx({})jx",
     R"jx(None|True|1.0|1e-07|1e+16|123456789.123|0.30000000000000004|[1, 'a', None, 1.5]|{'k': 'v', 'n': [1]})jx"},
    {R"jx({{ "it's" }}|{{ ["it's", 'say "hi"', 'both \' "'] }}|{{ ['a\nb', 'tab\t'] }})jx",
     R"jx({})jx", R"jx(it's|["it's", 'say "hi"', 'both \' "']|['a\nb', 'tab\t'])jx"},
    {R"jx({% if x %}yes{% elif y %}y{% else %}no{% endif %})jx", R"jx({"x": 0, "y": 1})jx",
     R"jx(y)jx"},
    {R"jx({% for i in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ i }} {% endfor %})jx",
     R"jx({"items": ["a", "b", "c"]})jx",
     R"jx(1/0/3/2/True/False/3:a 2/1/2/1/False/False/3:b 3/2/1/0/False/True/3:c )jx"},
    {R"jx({% for i in [] %}x{% else %}empty{% endfor %})jx", R"jx({})jx", R"jx(empty)jx"},
    {R"jx({% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %})jx",
     R"jx({})jx", R"jx(0134)jx"},
    {R"jx({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %})jx",
     R"jx({"d": {"b": 1, "a": 2}})jx", R"jx(b=1;a=2;)jx"},
    {R"jx({% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %})jx",
     R"jx({"d": {"b": 1, "a": 2, "B": 3}})jx", R"jx(a=2;b=1;B=3;)jx"},
    {R"jx({% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %})jx",
     R"jx({"xs": [1, 2, 3]})jx", R"jx(2232)jx"},
    {R"jx({% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }})jx",
     R"jx({})jx", R"jx(3)jx"},
    {R"jx({% set x = 1 %}{% for i in range(2) %}{% set x = 5 %}{{ x }}{% endfor %}{{ x }})jx",
     R"jx({})jx", R"jx(551)jx"},
    {R"jx({% set a, b = [1, 2] %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }})jx", R"jx({})jx",
     R"jx(12(1, 2))jx"},
    {R"jx({% set s %}block {{ 1 }}{% endset %}[{{ s }}])jx", R"jx({})jx", R"jx([block 1])jx"},
    {R"jx({% set s | upper %}block{% endset %}[{{ s }}])jx", R"jx({})jx", R"jx([BLOCK])jx"},
    {R"jx({% macro m(a, b=2, c='x') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 3) }}|{{ m(1, c='z') }})jx",
     R"jx({})jx", R"jx(1-2-x|1-3-x|1-2-z)jx"},
    {R"jx({% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }})jx",
     R"jx({})jx", R"jx(54321)jx"},
    {R"jx({% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}inner{% endcall %})jx",
     R"jx({})jx", R"jx(<inner>)jx"},
    {R"jx({% macro w() %}<{{ caller(7) }}>{% endmacro %}{% call(x) w() %}got {{ x }}{% endcall %})jx",
     R"jx({})jx", R"jx(<got 7>)jx"},
    {R"jx({% filter upper %}hello {{ 'x' }}{% endfilter %})jx", R"jx({})jx", R"jx(HELLO X)jx"},
    {R"jx({% raw %}{{ not rendered }}{% endraw %})jx", R"jx({})jx", R"jx({{ not rendered }})jx"},
    {R"jx(a  {#- c -#}  b {# c2 #} c)jx", R"jx({})jx", R"jx(ab  c)jx"},
    {R"jx(  {% if true %}
    x
  {% endif %}
  y)jx",
     R"jx({})jx",
     R"jx(    x
  y)jx"},
    {R"jx({%- if true -%}  
  x  
  {%- endif -%}  z)jx",
     R"jx({})jx", R"jx(xz)jx"},
    {R"jx(line1
  {{ 'v' }}  
{%+ if true %}p{% endif %}
{% if true +%}
q{% endif %})jx",
     R"jx({})jx",
     R"jx(line1
  v  
p
q)jx"},
    {R"jx({{ 1 in [1, 2] }}{{ 3 not in [1] }}{{ 'a' in 'abc' }}{{ 'k' in {'k': 1} }})jx",
     R"jx({})jx", R"jx(TrueTrueTrueTrue)jx"},
    {R"jx({{ 1 < 2 < 3 }}{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }})jx",
     R"jx({})jx", R"jx(TrueTrueTrueTrueTrue)jx"},
    {R"jx({{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 's' is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ {} is mapping }}{{ [] is sequence }}{{ 's' is iterable }}{{ true is true }}{{ false is false }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }})jx",
     R"jx({"x": 1})jx",
     R"jx(TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse)jx"},
    {R"jx({{ true is number }}{{ true is integer }}{{ 's' is sequence }}{{ {} is sequence }}{{ undef is sequence }}{{ undef is iterable }}{{ 1 is not string }})jx",
     R"jx({})jx", R"jx(TrueFalseTrueTrueTrueTrueTrue)jx"},
    {R"jx({{ 'abcdef'[1:3] }}|{{ 'abcdef'[::-1] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][-2:] }}|{{ [1,2,3][::2] }}|{{ 'héllo'[1] }}|{{ [1,2,3][-1] }})jx",
     R"jx({})jx", R"jx(bc|fedcba|[2, 3, 4]|[3, 4]|[1, 3]|é|3)jx"},
    {R"jx({{ d.a }}|{{ d['a'] }}|{{ d.missing }}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') }}|{{ l[5] }}|{{ l.0 }})jx",
     R"jx({"d": {"a": 1}, "l": [9]})jx", R"jx(1|1||1|dflt|None||9)jx"},
    {R"jx({{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello-world foo(bar' | title }}|{{ [1,2] | length }}|{{ 'héllo' | count }})jx",
     R"jx({})jx", R"jx(x|AB|ab|Hello world|Hello-World Foo(Bar|2|5)jx"},
    {R"jx({{ u | default('d') }}|{{ none | default('d') }}|{{ '' | default('d', true) }}|{{ 0 | d('z', boolean=true) }})jx",
     R"jx({})jx", R"jx(d|None|d|z)jx"},
    {R"jx({{ [3,1,2] | sort }}|{{ [3,1,2] | sort(reverse=true) }}|{{ ['b','A','a'] | sort }}|{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') }})jx",
     R"jx({})jx", R"jx([1, 2, 3]|[3, 2, 1]|['A', 'a', 'b']|[{'n': 1}, {'n': 2}])jx"},
    {R"jx({{ [1,2,3] | map('string') | join(',') }}|{{ users | map(attribute='name') | list }}|{{ users | map(attribute='zz', default='q') | list }})jx",
     R"jx({"users": [{"name": "a"}, {"name": "b"}]})jx", R"jx(1,2,3|['a', 'b']|['q', 'q'])jx"},
    {R"jx({{ [0,1,2,3] | select('odd') | list }}|{{ [0,1,2] | reject | list }}|{{ users | selectattr('admin') | map(attribute='name') | list }}|{{ users | rejectattr('name', 'equalto', 'a') | list }})jx",
     R"jx({"users": [{"name": "a", "admin": true}, {"name": "b", "admin": false}]})jx",
     R"jx([1, 3]|[0]|['a']|[{'name': 'b', 'admin': False}])jx"},
    {R"jx({{ 'abc' | list }}|{{ [1,2] | first }}|{{ [1,2] | last }}|{{ [1,2] | reverse | list }}|{{ 'abc' | reverse }}|{{ 'aXbX' | replace('X', 'y') }}|{{ 'aaa' | replace('a', 'b', 2) }})jx",
     R"jx({})jx", R"jx(['a', 'b', 'c']|1|2|[2, 1]|cba|ayby|bba)jx"},
    {R"jx({{ 1 | string }}|{{ '42' | int }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(5) }}|{{ '2.5' | float }}|{{ 3 | float }}|{{ -3 | abs }}|{{ 2.5 | round }}|{{ 3.14159 | round(2) }}|{{ 2.7 | round(method='floor') }})jx",
     R"jx({})jx", R"jx(1|42|3|0|5|2.5|3.0|3|2.0|3.14|2.0)jx"},
    {R"jx({{ [1,2,2,1,3] | unique | list }}|{{ [3,1,2] | min }}|{{ [3,1,2] | max }}|{{ [1,2,3] | sum }}|{{ 'a b  c' | wordcount }})jx",
     R"jx({})jx", R"jx([1, 2, 3]|1|3|6|3)jx"},
    {R"jx({{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(sort_keys=true) }}|{{ 'é"<>&\n' | tojson }}|{{ [1.0, 1e-7, none, true] | tojson }})jx",
     R"jx({"x": {"b": [1, {"c": null}], "a": "s"}})jx",
     R"jx({"b": [1, {"c": null}], "a": "s"}|{
  "b": [
    1,
    {
      "c": null
    }
  ],
  "a": "s"
}|{"a": "s", "b": [1, {"c": null}]}|"é\"<>&\n"|[1.0, 1e-07, null, true])jx"},
    {R"jx({{ 'a\nb\nc' | indent(2) }}|{{ 'a\n\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent(2, blank=true) }})jx",
     R"jx({})jx",
     R"jx(a
  b
  c|  a

  b|a
  
  b)jx"},
    {R"jx({{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aa'.replace('a', 'b') }}|{{ 'ab'.upper() }}|{{ 'hello world'.title() }})jx",
     R"jx({})jx",
     R"jx(a b|a|a|a|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|True|True|bb|AB|Hello World)jx"},
    {R"jx({{ d.keys() | list }}|{{ d.values() | list }}|{{ d.items() | list }})jx",
     R"jx({"d": {"a": 1, "b": 2}})jx", R"jx(['a', 'b']|[1, 2]|[('a', 1), ('b', 2)])jx"},
    {R"jx({{ x if x else 'no' }}|{{ 'y' if false }}|{{ (1, 2) }}|{{ () }}|{{ (1,) }})jx",
     R"jx({"x": ""})jx", R"jx(no||(1, 2)|()|(1,))jx"},
    {R"jx({{ not true }}{{ not 0 and 1 }}{{ 0 or 'b' }}{{ 1 and 'c' }}{{ -x }}{{ +x }}{{ - 2 | abs }})jx",
     R"jx({"x": 3})jx", R"jx(False1bc-332)jx"},
    {R"jx({{ messages[0]['content'] | trim + ' ' }}{{ 'a' + 'b' | upper }})jx",
     R"jx({"messages": [{"content": "  hi  "}]})jx", R"jx(hi aB)jx"},
    {R"jx({{ tools }}|{{ tools is defined }}|{{ tools is none }})jx", R"jx({"tools": null})jx",
     R"jx(None|True|True)jx"},
    {R"jx({% for m in messages %}{{ m.role }}:{{ m.content }}{% if not loop.last %}, {% endif %}{% endfor %})jx",
     R"jx({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})jx",
     R"jx(user:x, assistant:y)jx"},
    {R"jx({{ {'a': 1}['a'] }}{{ [[1, 2]][0][1] }}{{ 'x' ~ 'y' * 2 }})jx", R"jx({})jx",
     R"jx(12xyy)jx"},
    {R"jx({{ '\u00e9\x41\101' }}|{{ 'a\qb' }})jx", R"jx({})jx", R"jx(éAA|a\qb)jx"},
    {R"jx({% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, k=3) }})jx", R"jx({})jx",
     R"jx((1, 2){'k': 3})jx"},
    {R"jx({{ loop }})jx", R"jx({})jx", R"jx()jx"},
    {R"jx({{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ range(5, 0, -2) | list }})jx",
     R"jx({})jx", R"jx([0, 1, 2][1, 3, 5][5, 3, 1])jx"},
    {R"jx({{ [1,2,3] | join }}{{ ['a', 'b'] | join(', ') }}{{ 'abc' | join('-') }})jx", R"jx({})jx",
     R"jx(123a, ba-b-c)jx"},
    {R"jx({% set d = dict(a=1, b=2) %}{{ d }}{{ namespace(a=1) }})jx", R"jx({})jx",
     R"jx({'a': 1, 'b': 2}<Namespace {'a': 1}>)jx"},
    {R"jx({{ '%s' }}{{ 10 / 4 }}{{ 2 ** -1 }}{{ 5 // 2.0 }})jx", R"jx({})jx", R"jx(%s2.50.52.0)jx"},
    {R"jx(text
with crlf
{% if true %}
x
{% endif %}
)jx",
     R"jx({})jx",
     R"jx(text
with crlf
x
)jx"},
    {R"jx(trailing newline
)jx",
     R"jx({})jx", R"jx(trailing newline)jx"},
    {R"jx({{ 'a' }}
{{ 'b' }}
)jx",
     R"jx({})jx",
     R"jx(a
b)jx"},
    {R"jx({% for x in xs %}
  {{ x }}
{% endfor %}
)jx",
     R"jx({"xs": [1, 2]})jx",
     R"jx(  1
  2
)jx"},
    {R"jx({{ 'x' | center(9) }})jx", R"jx({})jx", R"jx(    x    )jx"},
    {R"jx({{ 'abc' is lower }}{{ 'ABC' is upper }}{{ x is callable }}{{ range is callable }})jx",
     R"jx({"x": 1})jx", R"jx(TrueTrueFalseTrue)jx"},
    {R"jx({{ 'héllo wörld'.split('ö') }}|{{ 'ab'.find('b') }}|{{ 'a,b'.split(',', 0) }})jx",
     R"jx({})jx", R"jx(['héllo w', 'rld']|1|['a,b'])jx"},
    {R"jx({{ 1000000 * 1000000 }}|{{ 12345678901234567 }}|{{ 1.5e300 * 1e10 }}|{{ -0.0 }}|{{ 100.0 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 2.5e-5 }})jx",
     R"jx({})jx",
     R"jx(1000000000000|12345678901234567|inf|-0.0|100.0|1000000000000000.0|0.0001|1e-05|2.5e-05)jx"},
    {R"jx({{ x }})jx", R"jx({"x": [1.5, 2.25e-08, 1e+22, {"n": null, "t": true}]})jx",
     R"jx([1.5, 2.25e-08, 1e+22, {'n': None, 't': True}])jx"},
    {R"jx({{ 'a' == 'a' and 1 != 2 }}{{ 1 >= 1 }}{{ 2 <= 1 }}{{ 2 > 1 }})jx", R"jx({})jx",
     R"jx(TrueTrueFalseTrue)jx"},
    {R"jx({%- for m in ms -%}{{ m }}{%- endfor -%})jx", R"jx({"ms": ["x", "y"]})jx", R"jx(xy)jx"},
    {R"jx({{ 'x' ~ y.z }})jx", R"jx({"y": {}})jx", R"jx(x)jx"},
    {R"jx({{ messages[5] }}|{{ messages[5] is defined }})jx", R"jx({"messages": []})jx",
     R"jx(|False)jx"},
    {R"jx({% generation %}gen{% endgeneration %})jx", R"jx({})jx", R"jx(gen)jx"},
    {R"jx({{ d | dictsort(by='value') }}|{{ d | dictsort(reverse=true) }})jx",
     R"jx({"d": {"a": 3, "b": 1, "c": 2}})jx",
     R"jx([('b', 1), ('c', 2), ('a', 3)]|[('c', 2), ('b', 1), ('a', 3)])jx"},
    {R"jx({{ 'abc' | first }}{{ '' | first }}{{ {'a': 1, 'b': 2} | last }})jx", R"jx({})jx",
     R"jx(ab)jx"},
    {R"jx({{ [1,2,3] | batch(2) | list }})jx", R"jx({})jx", R"jx([[1, 2], [3]])jx"},
    {R"jx({{ x | items | list }})jx", R"jx({"x": {"a": [1]}})jx", R"jx([('a', [1])])jx"},
    {R"jx({{ ' \u00a0x\u3000 ' | trim }}|{{ 'x'.strip() }})jx", R"jx({})jx", R"jx(x|x)jx"},
    {R"jx({% with a = 1, b = x %}{{ a }}{{ b }}{% set c = 3 %}{% endwith %}{{ c }}|{% with %}in{% endwith %})jx",
     R"jx({"x": 2})jx", R"jx(12|in)jx"},
    {R"jx({{ '%s and %d' % ('a', 3) }}|{{ '%05.2f' % 3.14159 }}|{{ '%-5s|' % 'ab' }}|{{ '%(n)s!' % {'n': 'x'} }}|{{ '100%%' % () }}|{{ '%r' % 'q' }}|{{ '%x' % 255 }}|{{ '%.3s' % 'abcdef' }})jx",
     R"jx({})jx", R"jx(a and 3|03.14|ab   ||x!|100%|'q'|ff|abc)jx"},
    {R"jx({{ '%s' | format('v') }}|{{ '%s-%s' | format(1, 2) }}|{{ '%(a)s' | format(a=5) }}|{{ '%s' % [1, 2] }})jx",
     R"jx({})jx", R"jx(v|1-2|5|[1, 2])jx"},
    {R"jx({{ 'x' | center(9) }}|{{ 'ab' | center(7) }}|{{ 'abc' | center(2) }}|{{ [1,2,3,4,5] | batch(2) | list }}|{{ [1,2,3] | batch(2, 'f') | list }})jx",
     R"jx({})jx", R"jx(    x    |   ab  |abc|[[1, 2], [3, 4], [5]]|[[1, 2], [3, 'f']])jx"},
};

Result<std::string> RenderWith(const std::string& src, const std::string& context_json,
                               const RenderOptions& options = {}) {
  GL_ASSIGN_OR_RETURN(Template t, Template::Parse(src));
  GL_ASSIGN_OR_RETURN(Value ctx, Value::FromJson(nlohmann::ordered_json::parse(context_json)));
  return t.Render(ctx, options);
}

TEST(JinjaTest, FeatureTableMatchesPythonJinja2) {
  int n = 0;
  for (const Case& c : kCases) {
    Result<std::string> r = RenderWith(c.tmpl, c.context);
    ASSERT_TRUE(r.ok()) << c.tmpl << "\n" << r.status().ToString();
    EXPECT_EQ(*r, c.expected) << "template: " << c.tmpl;
    ++n;
  }
  EXPECT_GE(n, 80);
}

struct ErrorCase {
  const char* tmpl;
  const char* context;
  const char* must_contain;
};

TEST(JinjaTest, ErrorsAreValuesWithLocation) {
  const ErrorCase cases[] = {
      {"{{ raise_exception('boom') }}", "{}", "line 1, column 4: boom"},
      {"x\n  {{ u.attr }}", "{}", "line 2"},
      {"{{ u.attr }}", "{}", "'u' is undefined"},
      {"{{ 1 + 'a' }}", "{}", "unsupported operand type(s) for +: 'int' and 'str'"},
      {"{% for x in 5 %}{% endfor %}", "{}", "'int' object is not iterable"},
      {"{{ x.append(1) }}", R"({"x": []})", "unsafe"},
      {"{{ 1 }\n}}", "{}", "syntax error at line 1"},
      {"{% if %}", "{}", "line 1, column 7"},
      {"{% if x %}", "{}", "unexpected end of template"},
      {"{% endif %}", "{}", "unknown tag 'endif'"},
      {"{{ foo(", "{}", "syntax error"},
      {"{{ 'unterminated }}", "{}", "unterminated string"},
      {"{% unknowntag %}", "{}", "unknown tag 'unknowntag'"},
      {"{{ [3, 'a'] | sort }}", "{}", "not supported between"},
      {"{{ x | nosuchfilter }}", "{}", "No filter named 'nosuchfilter'"},
      {"{{ '%s %s' % ('a',) }}", "{}", "not enough arguments for format string"},
      {"{{ '%d' % 'x' }}", "{}", "a real number is required"},
      {"{{ x is nosuchtest }}", "{}", "No test named 'nosuchtest'"},
      {"{% break %}", "{}", "outside of a loop"},
      {"{% set x.y = 1 %}", R"({"x": {}})", "non-namespace"},
      {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "{}", "takes not more than 1"},
      {"{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "{}", "no keyword argument 'b'"},
      {"{{ 1 // 0 }}", "{}", "division or modulo by zero"},
      {"{{ 9223372036854775807 + 1 }}", "{}", "integer overflow"},
      {"{{ range(1000000) }}", "{}", "MAX_RANGE"},
      {"{{ x[::0] }}", R"({"x": [1]})", "slice step cannot be zero"},
      {"{{ {'a': 1} | tojson }}{{ x | tojson }}", R"({"x": 1})", ""},
  };
  for (const ErrorCase& c : cases) {
    Result<std::string> r = RenderWith(c.tmpl, c.context);
    if (std::string(c.must_contain).empty()) {
      EXPECT_TRUE(r.ok()) << c.tmpl;
      continue;
    }
    ASSERT_FALSE(r.ok()) << c.tmpl << " rendered: " << *r;
    EXPECT_NE(r.status().message().find(c.must_contain), std::string::npos)
        << c.tmpl << " -> " << r.status().message();
  }
}

TEST(JinjaTest, RangesAndSlicesNearInt64LimitsDoNotOverflow) {
  // Expected output from Python jinja2.
  Result<std::string> r = RenderWith(
      "{{ range(9223372036854775800, 9223372036854775807, 5) | list }}|"
      "{{ [1,2,3][::9223372036854775807] }}|{{ [1,2,3][::-9223372036854775807] }}|"
      "{{ 'abc'[-9223372036854775807:] }}|{{ range(0, 10, 4) | list }}|"
      "{{ range(10, 0, -3) | list }}|{{ range(-5) | list }}",
      "{}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "[9223372036854775800, 9223372036854775805]|[1]|[3]|abc|[0, 4, 8]|[10, 7, 4, 1]|[]");
  EXPECT_FALSE(RenderWith("{{ '%d' % 1e300 }}", "{}").ok());
}

TEST(JinjaTest, InvalidUtf8TemplateIsRejected) {
  Result<Template> t = Template::Parse("ok \xff\xfe {{ x }}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not valid UTF-8"), std::string::npos);
}

TEST(JinjaTest, RecursionIsBounded) {
  Result<std::string> r =
      RenderWith("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos);
}

TEST(JinjaTest, LoopIterationsAreBounded) {
  RenderOptions o;
  o.max_loop_iterations = 1000;
  Result<std::string> r = RenderWith(
      "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", "{}", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(JinjaTest, OutputAndValueSizeAreBounded) {
  RenderOptions o;
  o.max_output_bytes = 1000;
  Result<std::string> r = RenderWith("{% for i in range(2000) %}x{% endfor %}", "{}", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(RenderWith("{{ 'a' * 100000 }}", "{}", o).ok());
  EXPECT_FALSE(RenderWith("{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
                          "{% set ns.s = ns.s + ns.s %}{% endfor %}",
                          "{}", o)
                   .ok());
  EXPECT_FALSE(RenderWith("{{ ('a' * 999) | replace('a', 'aaaa') }}", "{}", o).ok());
}

TEST(JinjaTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(5000, '(');
  EXPECT_FALSE(Template::Parse("{{ " + deep + "1" + std::string(5000, ')') + " }}").ok());
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_FALSE(Template::Parse(ifs).ok());
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_FALSE(Template::Parse(nots + "x }}").ok());
  EXPECT_FALSE(Template::Parse("{{ " + std::string(5000, '-') + "1 }}").ok());
  EXPECT_FALSE(Template::Parse("{{ " + std::string(5000, '[') + " }}").ok());
  // Iteratively built chains are capped too (evaluating or destroying them recurses).
  std::string sum = "{{ 1";
  for (int i = 0; i < 100000; ++i) sum += "+1";
  EXPECT_FALSE(Template::Parse(sum + " }}").ok());
  std::string attrs = "{{ x";
  for (int i = 0; i < 100000; ++i) attrs += ".a";
  EXPECT_FALSE(Template::Parse(attrs + " }}").ok());
  std::string filters = "{{ x";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_FALSE(Template::Parse(filters + " }}").ok());
  // Moderately long chains are fine.
  std::string ok_sum = "{{ 1";
  for (int i = 0; i < 200; ++i) ok_sum += "+1";
  Result<std::string> r = RenderWith(ok_sum + " }}", "{}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "201");
}

TEST(JinjaTest, ValueNestingIsBounded) {
  Result<std::string> r = RenderWith(
      "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x }}",
      "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(JinjaTest, SelfReferencingNamespaceDoesNotLeak) {
  // Run under ASan/LSan: the interpreter breaks namespace cycles when rendering ends.
  Result<std::string> r =
      RenderWith("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}", "{}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "True");
}

TEST(JinjaTest, StrftimeNowUsesPinnedTime) {
  RenderOptions o;
  o.now = 0;  // 1970-01-01 in UTC; the year is the same in every time zone but the far east
  Result<std::string> r = RenderWith("{{ strftime_now('%Y') }}", "{}", o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r == "1970" || *r == "1969") << *r;
}

TEST(JinjaTest, JsonInputKeepsKeyOrderAndNumberKinds) {
  Result<std::string> r =
      RenderWith("{{ d }}|{{ d | tojson }}", R"({"d": {"z": 1, "a": 1.0, "m": [true, null]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, R"({'z': 1, 'a': 1.0, 'm': [True, None]}|{"z": 1, "a": 1.0, "m": [true, null]})");
}

TEST(JinjaTest, TemplateIsReusableAcrossRenders) {
  Result<Template> t =
      Template::Parse("{% set ns = namespace(n=0) %}{% set ns.n = ns.n + x %}{{ ns.n }}");
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < 3; ++i) {
    ValueDict ctx;
    ctx.emplace_back(Value::String("x"), Value::Int(i));
    Result<std::string> r = t->Render(Value::Dict(ctx));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, std::to_string(i));
  }
}

TEST(JinjaTest, FloatFormattingMatchesPythonRepr) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1.0"},
      {0.1, "0.1"},
      {1e-7, "1e-07"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123.456, "123.456"},
      {-2.5, "-2.5"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {0.30000000000000004, "0.30000000000000004"},
      {-0.0, "-0.0"}};
  for (const auto& [d, s] : cases) EXPECT_EQ(FormatFloat(d), s);
}

}  // namespace
}  // namespace gemma_local::jinja
