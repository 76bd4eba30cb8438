//! The differential harness's generator: seeded, deterministic Liquid templates and JSON contexts.
//!
//! Every case has one *focus* (a filter, an operator, a tag, a raw/comment/doc block, an output of
//! one kind of value) and a category naming it with the kinds of its inputs, e.g.
//! `filter:round(float; float)` or `op:<(numeric-string; int)`. Disagreements are bucketed and
//! recorded by that category. Case `i` of seed `s` depends only on `(s, i)`, so any case can be
//! regenerated alone.

use std::collections::BTreeMap;

use serde_json::{Value as J, json};

/// SplitMix64: small, fast, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: usize,
    pub category: String,
    pub template: String,
    pub data: J,
    pub partials: BTreeMap<String, String>,
}

impl Case {
    pub fn to_json_line(&self) -> String {
        json!({
            "id": self.id,
            "template": self.template,
            "data": self.data,
            "partials": self.partials,
        })
        .to_string()
    }
}

/// Generates case `id` of `seed`.
pub fn case(seed: u64, id: usize) -> Case {
    let mut rng = Rng::new(seed ^ (id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    // Mix once more so neighbouring ids diverge immediately.
    rng.next_u64();
    let mut g = Gen {
        rng,
        partials: BTreeMap::new(),
        loop_vars: Vec::new(),
        depth: 0,
    };
    let data = g.context();
    let (category, mut template) = match g.rng.below(100) {
        0..=41 => g.filter_case(),
        42..=51 => g.operator_case(),
        52..=57 => g.output_case(),
        58..=91 => g.tag_case(),
        _ => g.block_case(),
    };
    if g.rng.chance(15) {
        template = format!(
            "{}{}{}",
            g.noise(),
            template,
            g.rng.pick(&["", "\n", " end", "\n  -\n"])
        );
    }
    Case {
        id,
        category,
        template,
        data,
        partials: g.partials,
    }
}

struct Gen {
    rng: Rng,
    partials: BTreeMap<String, String>,
    /// Loop variables in scope, innermost last.
    loop_vars: Vec<String>,
    depth: u32,
}

const WORDS: &[&str] = &[
    "apple", "Banana", "cherry", "apple", "date", "Elder", "fig", "10", "9", "2", "", " ", "b",
    "A", "zebra", "Zoo", "éclair", "김치",
];

const STRINGS: &[&str] = &[
    "hello world",
    "Hello, World!",
    "  padded  ",
    "a,b,c",
    "a, b, ,c,",
    "<b>bold</b> & \"q\"",
    "<p>one</p><script>x()</script><!-- c -->two",
    "café 김민준",
    "line1\nline2\r\nline3\n",
    "one two three four five six",
    "tom's",
    "&amp; &lt; & &#39; &foo",
    "ünïcödé ÉÀ",
    "a-b_c.d/e?f=g&h=i j+k%20",
    "   ",
    "x",
    "The quick brown fox jumps over the lazy dog",
    "aaa",
    "MiXeD CaSe",
    "1,2,3",
    "hello%20world+%2B",
    "SGVsbG8sIFdvcmxkIQ==",
    "aGk-_w",
];

const NUMERIC_STRINGS: &[&str] = &[
    "42", "-7", "3.14", "0", "1e3", " 5 ", "007", "2.50", "-0.5", "10abc", "1_000", "12.0", "+3",
    ".5", "5.",
];

// 3.14159 is data a template author would type, not an approximation of pi.
#[allow(clippy::approx_constant)]
const FLOATS: &[f64] = &[
    0.1,
    2.5,
    -3.75,
    1.005,
    2.675,
    1e20,
    1.5e-5,
    123456.789,
    0.5,
    -0.5,
    1.0,
    3.14159,
    100.0,
    1e16,
    12345678.9,
    -0.0001,
    0.30000000000000004,
    1234567.0,
    9.995,
    -2.5,
    1e15,
    0.0001,
    7.0e-10,
];

const BIG: &[i64] = &[
    9_007_199_254_740_993,
    9_223_372_036_854_775_807,
    1_234_567_890_123_456_789,
    -9_223_372_036_854_775_807,
    4_611_686_018_427_387_904,
    100_000_000_000,
];

const DATES: &[&str] = &[
    "2024-03-05 14:07:09",
    "2024-03-05T14:07:09Z",
    "2024-03-05",
    "March 5, 2024",
    "2021-12-31T23:59:59+00:00",
    "1999-01-01 00:00:00",
    "2024-02-29T08:05:03Z",
    "5 Mar 2024",
    "not a date",
];

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%d/%m/%y",
    "%b %d, %Y",
    "%B %-d, %Y",
    "%a %A",
    "%H:%M:%S",
    "%I:%M %p",
    "%j",
    "%e",
    "%Y%m%dT%H%M%S",
    "%s",
    "%%Y",
    "%U %W %u %w",
    "%C %y %G",
    "%l %k",
    "%P",
    "%Z",
    "%z",
    "%D",
    "%F %T",
    "%-m/%-d",
    "week %V",
    "",
    "plain text",
];

/// Variables every context defines (or deliberately does not), with the kind a category names.
const VARS: &[(&str, &str)] = &[
    ("u", "undefined"),
    ("u.x", "undefined"),
    ("n", "nil"),
    ("t", "bool"),
    ("f", "bool"),
    ("zero", "int"),
    ("i", "int"),
    ("neg", "negative"),
    ("big", "large"),
    ("fl", "float"),
    ("fl2", "float"),
    ("ns", "numeric-string"),
    ("s", "string"),
    ("s2", "string"),
    ("es", "empty-string"),
    ("ws", "blank-string"),
    ("arr", "array"),
    ("sarr", "array"),
    ("farr", "array"),
    ("marr", "array"),
    ("earr", "empty-array"),
    ("h", "hash"),
    ("eh", "empty-hash"),
    ("harr", "array-of-hashes"),
    ("nested", "nested"),
    ("h.a", "int"),
    ("h.e.f", "string"),
    ("h['b']", "string"),
    ("h.c", "array"),
    ("arr[0]", "index"),
    ("arr[-1]", "index"),
    ("arr.first", "index"),
    ("sarr.last", "index"),
    ("arr.size", "int"),
    ("s.size", "int"),
    ("h.size", "int"),
    ("harr[1].name", "index"),
    ("harr.first.tags", "index"),
    ("nested.m.n.o", "int"),
    ("nested.list[0].k[2].z", "string"),
    ("nested['m']['n']", "hash"),
    ("date", "date"),
];

impl Gen {
    fn context(&mut self) -> J {
        let r = &mut self.rng;
        let ints =
            |r: &mut Rng, n: usize| -> Vec<J> { (0..n).map(|_| json!(r.range(-5, 20))).collect() };
        let n = r.below(6);
        let arr = ints(r, n);
        let n = r.below(6);
        let sarr: Vec<J> = (0..n).map(|_| json!(r.pick(WORDS))).collect();
        let n = r.below(5);
        let farr: Vec<J> = (0..n).map(|_| json!(*r.pick(FLOATS))).collect();
        let marr = {
            let pool = [
                json!(1),
                json!("2"),
                J::Null,
                json!(3.5),
                json!("b"),
                json!(true),
                json!([4, 5]),
                json!(-1),
                json!("A"),
                json!({"k": 1}),
                json!(false),
                json!([]),
            ];
            let n = r.below(6);
            (0..n).map(|_| r.pick(&pool).clone()).collect::<Vec<_>>()
        };
        let harr = {
            let n = r.below(5);
            (0..n)
                .map(|k| {
                    let mut o = serde_json::Map::new();
                    if r.chance(85) {
                        o.insert("name".into(), json!(r.pick(WORDS)));
                    }
                    if r.chance(80) {
                        let price = if r.chance(30) {
                            json!(*r.pick(FLOATS))
                        } else {
                            json!(r.range(0, 9))
                        };
                        o.insert("price".into(), price);
                    }
                    if r.chance(70) {
                        let ok = if r.chance(15) {
                            J::Null
                        } else {
                            json!(r.chance(50))
                        };
                        o.insert("ok".into(), ok);
                    }
                    if r.chance(50) {
                        let tags: Vec<J> = (0..r.below(3)).map(|_| json!(r.pick(WORDS))).collect();
                        o.insert("tags".into(), J::Array(tags));
                    }
                    o.insert("id".into(), json!(k));
                    J::Object(o)
                })
                .collect::<Vec<_>>()
        };
        let date: J = if r.chance(30) {
            json!(r.range(0, 2_000_000_000))
        } else {
            json!(r.pick(DATES))
        };
        json!({
            "n": null,
            "t": true,
            "f": false,
            "zero": 0,
            "i": r.range(1, 20),
            "neg": -r.range(1, 30),
            "big": r.pick(BIG),
            "fl": r.pick(FLOATS),
            "fl2": r.pick(FLOATS),
            "ns": r.pick(NUMERIC_STRINGS),
            "s": r.pick(STRINGS),
            "s2": r.pick(STRINGS),
            "es": "",
            "ws": "  \t ",
            "arr": arr,
            "sarr": sarr,
            "farr": farr,
            "marr": marr,
            "earr": [],
            "h": {"a": r.range(-3, 9), "b": r.pick(WORDS), "c": [1, 2], "d": null, "e": {"f": "g"}},
            "eh": {},
            "harr": harr,
            "nested": {"list": [{"k": [1, 2, {"z": "deep"}]}], "m": {"n": {"o": 5}}},
            "date": date,
        })
    }

    fn string_literal(&mut self) -> String {
        let s = *self.rng.pick(&[
            "a",
            "abc",
            "hello world",
            "",
            " ",
            "x,y,z",
            "Hello",
            "-",
            ", ",
            "2",
            "3.5",
            "apple",
            "<br>",
            "café",
            "o",
            "l",
            "world",
            "%",
            "  y  ",
            "&",
        ]);
        if self.rng.chance(80) {
            format!("'{s}'")
        } else {
            format!("\"{s}\"")
        }
    }

    /// A literal value and its kind.
    fn literal(&mut self) -> (String, &'static str) {
        match self.rng.below(13) {
            0 => ("nil".into(), "nil"),
            1 => (self.rng.pick(&["true", "false"]).to_string(), "bool"),
            2 | 3 => (self.rng.range(0, 12).to_string(), "int"),
            4 => (format!("-{}", self.rng.range(1, 12)), "negative"),
            5 => (
                self.rng
                    .pick(&[
                        "1.5", "-0.25", "2.0", "0.1", "3.14159", "10.0", "-2.5", "0.5",
                    ])
                    .to_string(),
                "float",
            ),
            6..=8 => (self.string_literal(), "string"),
            9 => (
                format!("'{}'", self.rng.pick(&["5", "-3", "2.5", "10", "0"])),
                "numeric-string",
            ),
            10 => {
                let a = self.rng.range(-2, 3);
                let b = if self.rng.chance(20) {
                    "i".to_string()
                } else {
                    self.rng.range(-1, 6).to_string()
                };
                (format!("({a}..{b})"), "range")
            }
            11 => ("empty".into(), "empty"),
            _ => ("blank".into(), "blank"),
        }
    }

    /// Any value expression: a literal, a context variable or a loop variable.
    fn expr(&mut self) -> (String, &'static str) {
        if !self.loop_vars.is_empty() && self.rng.chance(25) {
            let v = self.rng.pick(&self.loop_vars).clone();
            return (v, "loop-var");
        }
        if self.rng.chance(40) {
            self.literal()
        } else {
            let (v, k) = *self.rng.pick(VARS);
            (v.to_string(), k)
        }
    }

    fn noise(&mut self) -> String {
        match self.rng.below(6) {
            0 => "text ".into(),
            1 => "\n  ".into(),
            2 => "{%- comment -%} note {%- endcomment -%}".into(),
            3 => "{{- 'a' -}} \n".into(),
            4 => "{% # inline note %}".into(),
            _ => "  {{ i }}\n".into(),
        }
    }

    /// Arguments for a filter: per-filter sensible values most of the time, any value otherwise.
    fn filter_args(&mut self, name: &str) -> (Vec<String>, Vec<&'static str>) {
        let mut args = Vec::new();
        let mut kinds = Vec::new();
        let count = match name {
            "abs"
            | "capitalize"
            | "ceil"
            | "downcase"
            | "escape"
            | "escape_once"
            | "first"
            | "floor"
            | "last"
            | "lstrip"
            | "newline_to_br"
            | "reverse"
            | "rstrip"
            | "size"
            | "strip"
            | "strip_html"
            | "strip_newlines"
            | "upcase"
            | "url_decode"
            | "url_encode"
            | "base64_encode"
            | "base64_decode"
            | "base64_url_safe_encode"
            | "base64_url_safe_decode" => 0,
            "compact" | "sort" | "sort_natural" | "uniq" | "sum" | "round" | "join" => {
                self.rng.below(2)
            }
            "truncate" | "truncatewords" | "slice" | "date" | "default" | "replace"
            | "replace_first" => 1 + self.rng.below(2),
            "where" | "find" | "find_index" | "has" | "reject" | "replace_last" => {
                1 + self.rng.below(2)
            }
            _ => 1,
        };
        // Occasionally a wrong number of arguments, to compare errors.
        let count = if self.rng.chance(3) { count + 1 } else { count };
        for position in 0..count {
            let (a, k) = if self.rng.chance(65) {
                self.sensible_arg(name, position)
            } else {
                self.expr()
            };
            args.push(a);
            kinds.push(k);
        }
        if name == "default" && self.rng.chance(25) {
            args.push(format!(
                "allow_false: {}",
                self.rng.pick(&["true", "false"])
            ));
            kinds.push("allow_false");
        }
        (args, kinds)
    }

    fn sensible_arg(&mut self, name: &str, position: usize) -> (String, &'static str) {
        fn s(v: &str) -> (String, &'static str) {
            (v.to_string(), "string")
        }
        let r = &mut self.rng;
        match (name, position) {
            ("round", _) => match r.below(5) {
                0 => (r.range(0, 4).to_string(), "int"),
                1 => (format!("-{}", r.range(1, 2)), "negative"),
                2 => (r.pick(&["1.5", "2.0", "0.7", "-1.5"]).to_string(), "float"),
                3 => (r.pick(&["'2'", "'1.5'", "'x'"]).to_string(), "string"),
                _ => ("fl".into(), "float"),
            },
            ("plus" | "minus" | "times" | "divided_by" | "modulo" | "at_least" | "at_most", _) => {
                match r.below(7) {
                    0 => (r.range(0, 10).to_string(), "int"),
                    1 => (format!("-{}", r.range(1, 10)), "negative"),
                    2 => (
                        r.pick(&["0.1", "2.5", "3.0", "0.3", "-1.5", "1.1", "1e3"])
                            .to_string(),
                        "float",
                    ),
                    3 => (r.pick(&["'3'", "'2.5'", "'x'", "''"]).to_string(), "string"),
                    4 => (r.pick(&["fl", "fl2"]).to_string(), "float"),
                    5 => ("big".into(), "large"),
                    _ => (r.pick(&["i", "neg", "zero", "ns"]).to_string(), "var"),
                }
            }
            ("truncate" | "truncatewords", 0) => match r.below(4) {
                0 => (r.range(0, 8).to_string(), "int"),
                1 => (r.range(9, 40).to_string(), "int"),
                2 => ("-1".into(), "negative"),
                _ => ("'5'".into(), "numeric-string"),
            },
            ("truncate" | "truncatewords", _) => {
                s(r.pick::<&str>(&["'...'", "''", "'--'", "' (more)'", "'ab'"]))
            }
            ("slice", _) => match r.below(4) {
                0 => (r.range(0, 5).to_string(), "int"),
                1 => (format!("-{}", r.range(1, 5)), "negative"),
                2 => ("'2'".into(), "numeric-string"),
                _ => ("1.5".into(), "float"),
            },
            ("date", _) => (format!("'{}'", r.pick(DATE_FORMATS)), "format"),
            ("split", _) => {
                s(r.pick::<&str>(&["','", "' '", "''", "', '", "'o'", "'x'", "'ll'", "'\n'"]))
            }
            ("join", _) => s(r.pick::<&str>(&["', '", "'-'", "''", "' and '"])),
            ("append" | "prepend", _) => s(r.pick::<&str>(&["'!'", "''", "' x'", "'<i>'"])),
            (
                "remove" | "remove_first" | "remove_last" | "replace" | "replace_first"
                | "replace_last",
                0,
            ) => s(r.pick::<&str>(&["'o'", "'l'", "' '", "''", "'hello'", "','"])),
            ("replace" | "replace_first" | "replace_last", _) => {
                s(r.pick::<&str>(&["'0'", "''", "'[$&]'", "'\\\\1'", "'xx'"]))
            }
            (
                "map" | "where" | "sort" | "sort_natural" | "uniq" | "sum" | "compact" | "find"
                | "find_index" | "has" | "reject",
                0,
            ) => s(r.pick::<&str>(&["'name'", "'price'", "'ok'", "'tags'", "'missing'", "'id'"])),
            ("where" | "find" | "find_index" | "has" | "reject", _) => match r.below(5) {
                0 => s(r.pick::<&str>(&["'apple'", "'b'", "'x'"])),
                1 => (r.range(0, 4).to_string(), "int"),
                2 => (r.pick(&["true", "false"]).to_string(), "bool"),
                3 => ("nil".into(), "nil"),
                _ => ("2.5".into(), "float"),
            },
            ("concat", _) => (
                r.pick(&["arr", "sarr", "earr", "marr", "s", "n"])
                    .to_string(),
                "var",
            ),
            ("default", _) => s(r.pick::<&str>(&["'fallback'", "0", "''", "false", "earr"])),
            _ => (r.pick(&["'a'", "1", "nil"]).to_string(), "any"),
        }
    }

    fn filter_input(&mut self, name: &str) -> (String, &'static str) {
        if self.rng.chance(45) {
            return self.expr();
        }
        let r = &mut self.rng;
        let choices: &[(&str, &str)] = match name {
            "abs" | "ceil" | "floor" | "round" | "plus" | "minus" | "times" | "divided_by"
            | "modulo" | "at_least" | "at_most" => &[
                ("fl", "float"),
                ("fl2", "float"),
                ("i", "int"),
                ("neg", "negative"),
                ("big", "large"),
                ("ns", "numeric-string"),
                ("zero", "int"),
                ("-7", "negative"),
                ("2.675", "float"),
                ("'3.7'", "numeric-string"),
            ],
            "date" => &[
                ("date", "date"),
                ("'2024-03-05 14:07:09'", "date"),
                ("1709647629", "int"),
                ("'1709647629'", "numeric-string"),
            ],
            "map" | "where" | "sort" | "sort_natural" | "uniq" | "sum" | "compact" | "find"
            | "find_index" | "has" | "reject" | "first" | "last" | "reverse" | "join"
            | "concat" | "size" => &[
                ("harr", "array-of-hashes"),
                ("arr", "array"),
                ("sarr", "array"),
                ("farr", "array"),
                ("marr", "array"),
                ("earr", "empty-array"),
                ("h", "hash"),
                ("(1..4)", "range"),
            ],
            "base64_decode" | "base64_url_safe_decode" | "url_decode" => &[
                ("'SGVsbG8sIFdvcmxkIQ=='", "string"),
                ("'aGk-_w=='", "string"),
                ("'aGk+/w=='", "string"),
                ("'%E2%9C%93+ok%20'", "string"),
                ("'not base64!'", "string"),
                ("s", "string"),
            ],
            _ => &[
                ("s", "string"),
                ("s2", "string"),
                ("es", "empty-string"),
                ("ws", "blank-string"),
                ("ns", "numeric-string"),
                ("i", "int"),
                ("fl", "float"),
            ],
        };
        let (v, k) = *r.pick(choices);
        (v.to_string(), k)
    }

    fn filter_case(&mut self) -> (String, String) {
        let name = *self.rng.pick(FILTERS);
        let (input, input_kind) = self.filter_input(name);
        let (args, kinds) = self.filter_args(name);
        let call = if args.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {}", args.join(", "))
        };
        let mut chain = format!("{input} | {call}");
        if self.rng.chance(20) {
            let next = *self.rng.pick(&[
                "join: ','",
                "size",
                "first",
                "append: '|'",
                "default: 'd'",
                "plus: 0",
                "upcase",
            ]);
            chain = format!("{chain} | {next}");
        }
        let template = match self.rng.below(10) {
            0 => format!("{{% assign r = {chain} %}}[{{{{ r }}}}]"),
            1 => format!("{{% echo {chain} %}}"),
            2 => format!("{{%- liquid\n  assign r = {chain}\n  echo r\n-%}}"),
            _ => format!("{{{{ {chain} }}}}"),
        };
        let category = format!("filter:{name}({input_kind}; {})", kinds.join(", "));
        (category, template)
    }

    fn comparison(&mut self) -> (String, String) {
        let op = *self
            .rng
            .pick(&["==", "!=", "<>", "<", ">", "<=", ">=", "contains"]);
        let (a, ka) = self.expr();
        let (b, kb) = self.expr();
        (format!("{a} {op} {b}"), format!("{op}({ka}; {kb})"))
    }

    fn operator_case(&mut self) -> (String, String) {
        let (mut cond, category) = if self.rng.chance(20) {
            let (v, k) = self.expr();
            (v, format!("truthy({k})"))
        } else {
            self.comparison()
        };
        let mut category = category;
        if self.rng.chance(25) {
            let (more, _) = self.comparison();
            let joiner = *self.rng.pick(&["and", "or"]);
            cond = format!("{cond} {joiner} {more}");
            category = format!("{category} {joiner} ...");
        }
        let tag = *self.rng.pick(&["if", "if", "unless"]);
        let template = if self.rng.chance(20) {
            format!("{{% {tag} {cond} %}}yes{{% elsif true %}}elsif{{% endif{tag} %}}")
                .replace("endifif", "endif")
                .replace("endifunless", "endunless")
        } else {
            let end = if tag == "if" { "endif" } else { "endunless" };
            format!("{{% {tag} {cond} %}}yes{{% else %}}no{{% {end} %}}")
        };
        (format!("op:{category}"), template)
    }

    fn output_case(&mut self) -> (String, String) {
        let (v, k) = self.expr();
        let template = match self.rng.below(4) {
            0 => format!("{{{{{v}}}}}"),
            1 => format!("{{{{- {v} -}}}}"),
            _ => format!("{{{{ {v} }}}}"),
        };
        (format!("output:{k}"), template)
    }

    /// A small body for a block tag: text, outputs and (shallowly) nested tags.
    fn body(&mut self) -> String {
        let n = 1 + self.rng.below(3);
        let mut out = String::new();
        for _ in 0..n {
            let piece = match self.rng.below(10) {
                0 => self.rng.pick(&["x", " ", "\n", "-", "a b"]).to_string(),
                1..=4 => {
                    let (v, _) = self.expr();
                    let ws = self.rng.chance(20);
                    if ws {
                        format!("{{{{- {v} -}}}}")
                    } else {
                        format!("{{{{ {v} }}}}")
                    }
                }
                5 if !self.loop_vars.is_empty() => self
                    .rng
                    .pick(&[
                        "{{ forloop.index }}",
                        "{{ forloop.index0 }}",
                        "{{ forloop.rindex }}",
                        "{{ forloop.first }}",
                        "{{ forloop.last }}",
                        "{{ forloop.length }}",
                        "{% if forloop.first %}F{% endif %}",
                        "{% break %}",
                        "{% continue %}",
                        "{% if forloop.index > 1 %}{% break %}{% endif %}",
                        "{{ forloop.parentloop.index }}",
                        "{% cycle 'a', 'b', 'c' %}",
                    ])
                    .to_string(),
                6 | 7 if self.depth < 2 => {
                    self.depth += 1;
                    let (_, t) = self.tag_case();
                    self.depth -= 1;
                    t
                }
                8 => self
                    .rng
                    .pick(&[
                        "{% assign z = 'set' %}",
                        "{% increment c %}",
                        "{% decrement c %}",
                        "{{ z }}",
                        "{% capture cap %}cap{{ i }}{% endcapture %}{{ cap }}",
                    ])
                    .to_string(),
                _ => {
                    let (v, _) = self.expr();
                    format!("{{{{ {v} | size }}}}")
                }
            };
            out.push_str(&piece);
        }
        out
    }

    fn iterable(&mut self) -> (String, &'static str) {
        let choices: &[(&str, &str)] = &[
            ("arr", "array"),
            ("sarr", "array"),
            ("marr", "array"),
            ("earr", "empty-array"),
            ("harr", "array-of-hashes"),
            ("h", "hash"),
            ("eh", "empty-hash"),
            ("(1..3)", "range"),
            ("(i..3)", "range"),
            ("(3..1)", "range"),
            ("s", "string"),
            ("es", "empty-string"),
            ("n", "nil"),
            ("u", "undefined"),
            ("i", "int"),
            ("nested.list", "nested"),
            ("harr[0].tags", "index"),
        ];
        let (v, k) = *self.rng.pick(choices);
        (v.to_string(), k)
    }

    fn loop_attrs(&mut self, tablerow: bool) -> String {
        let mut attrs = String::new();
        if !tablerow && self.rng.chance(20) {
            attrs.push_str(" reversed");
        }
        if self.rng.chance(30) {
            let v = self
                .rng
                .pick(&["0", "1", "2", "5", "i", "'2'", "-1", "n", "1.5"]);
            attrs.push_str(&format!(" limit: {v}"));
        }
        if self.rng.chance(30) {
            let v = self
                .rng
                .pick(&["0", "1", "2", "i", "'1'", "-1", "n", "continue", "10"]);
            attrs.push_str(&format!(" offset: {v}"));
        }
        if tablerow && self.rng.chance(50) {
            let v = self.rng.pick(&["1", "2", "3", "0", "'2'", "n", "i"]);
            attrs.push_str(&format!(" cols: {v}"));
        }
        attrs
    }

    fn tag_case(&mut self) -> (String, String) {
        let choice = *self.rng.pick(&[
            "for",
            "for",
            "for",
            "if",
            "if",
            "unless",
            "case",
            "case",
            "tablerow",
            "assign",
            "capture",
            "counter",
            "cycle",
            "ifchanged",
            "liquid",
            "echo",
            "partial",
            "partial",
            "ws",
        ]);
        match choice {
            "for" => {
                let (it, kind) = self.iterable();
                let attrs = self.loop_attrs(false);
                let var = if self.loop_vars.iter().any(|v| v == "item") {
                    "inner"
                } else {
                    "item"
                };
                self.loop_vars.push(var.to_string());
                let body = self.body();
                let otherwise = if self.rng.chance(30) {
                    format!("{{% else %}}{}", self.body())
                } else {
                    String::new()
                };
                self.loop_vars.pop();
                let template =
                    format!("{{% for {var} in {it}{attrs} %}}{body}{otherwise}{{% endfor %}}");
                let template = if attrs.contains("continue") || self.rng.chance(10) {
                    // offset: continue resumes where the previous loop over the same items stopped.
                    format!(
                        "{{% for {var} in {it} limit: 2 %}}{{{{ {var} }}}}{{% endfor %}}|{template}"
                    )
                } else {
                    template
                };
                let detail = if attrs.is_empty() { "" } else { " +attrs" };
                (format!("tag:for({kind}{detail})"), template)
            }
            "tablerow" => {
                let (it, kind) = self.iterable();
                let attrs = self.loop_attrs(true);
                self.loop_vars.push("cell".into());
                let extra = *self.rng.pick(&[
                    "",
                    "{{ tablerowloop.col }}",
                    "{{ tablerowloop.col_first }}",
                    "{{ tablerowloop.row }}",
                    "{{ tablerowloop.index }}",
                ]);
                let body = format!("{}{extra}", self.body());
                self.loop_vars.pop();
                let template =
                    format!("{{% tablerow cell in {it}{attrs} %}}{body}{{% endtablerow %}}");
                (format!("tag:tablerow({kind})"), template)
            }
            "if" | "unless" => {
                let (cond, cat) = if self.rng.chance(50) {
                    self.comparison()
                } else {
                    let (v, k) = self.expr();
                    (v, format!("truthy({k})"))
                };
                let body = self.body();
                let mut template = format!("{{% {choice} {cond} %}}{body}");
                if self.rng.chance(30) {
                    let (c2, _) = self.comparison();
                    template.push_str(&format!("{{% elsif {c2} %}}{}", self.body()));
                }
                if self.rng.chance(40) {
                    template.push_str(&format!("{{% else %}}{}", self.body()));
                }
                let end = if choice == "if" { "endif" } else { "endunless" };
                template.push_str(&format!("{{% {end} %}}"));
                (format!("tag:{choice}({cat})"), template)
            }
            "case" => {
                let (subject, kind) = self.expr();
                let mut template = format!("{{% case {subject} %}}");
                if self.rng.chance(15) {
                    template.push_str(" stray ");
                }
                for _ in 0..1 + self.rng.below(3) {
                    let mut values = vec![self.expr().0];
                    if self.rng.chance(30) {
                        let sep = *self.rng.pick(&[", ", " or "]);
                        values.push(format!("{sep}{}", self.expr().0));
                    }
                    template.push_str(&format!("{{% when {} %}}{}", values.concat(), self.body()));
                }
                if self.rng.chance(40) {
                    template.push_str(&format!("{{% else %}}{}", self.body()));
                }
                template.push_str("{% endcase %}");
                (format!("tag:case({kind})"), template)
            }
            "assign" => {
                let (v, k) = self.expr();
                let template = format!("{{% assign a = {v} %}}{{{{ a }}}}|{{{{ a.size }}}}");
                (format!("tag:assign({k})"), template)
            }
            "capture" => {
                let body = self.body();
                let name = self.rng.pick(&["cap", "'quoted'", "i"]).to_string();
                let shown = name.trim_matches('\'').to_string();
                let template =
                    format!("{{% capture {name} %}}{body}{{% endcapture %}}[{{{{ {shown} }}}}]");
                ("tag:capture".into(), template)
            }
            "counter" => {
                let parts = [
                    "{% increment c %}",
                    "{% decrement c %}",
                    "{{ c }}",
                    "{% assign c = 10 %}",
                    "{% increment i %}",
                    "{{ i }}",
                    ",",
                ];
                let n = 2 + self.rng.below(5);
                let template: String = (0..n).map(|_| *self.rng.pick(&parts)).collect();
                ("tag:increment/decrement".into(), template)
            }
            "cycle" => {
                let group = *self.rng.pick(&["", "'g': ", "i: ", "'h': "]);
                let vals =
                    *self
                        .rng
                        .pick(&["'a', 'b', 'c'", "'a', 'b'", "1, 2, 3", "i, s, n", "'x'"]);
                let n = 1 + self.rng.below(4);
                let one = format!("{{% cycle {group}{vals} %}}");
                let mut template: String = (0..n).map(|_| one.clone()).collect();
                if self.rng.chance(40) {
                    template = format!(
                        "{{% for x in (1..4) %}}{template}{{% cycle 'a', 'b' %}}{{% endfor %}}"
                    );
                }
                ("tag:cycle".into(), template)
            }
            "ifchanged" => {
                let it = self.rng.pick(&["arr", "sarr", "(1..3)", "marr"]);
                let template = format!(
                    "{{% for x in {it} %}}{{% ifchanged %}}{{{{ x }}}}{{% endifchanged %}}{{% endfor %}}"
                );
                ("tag:ifchanged".into(), template)
            }
            "liquid" => {
                let (v, _) = self.expr();
                let (cond, _) = self.comparison();
                let bodies = [
                    format!("assign x = {v}\necho x"),
                    format!("if {cond}\n  echo 'y'\nelse\n  echo 'n'\nendif"),
                    "for q in (1..3)\n  echo q\n  # a comment\nendfor".to_string(),
                    format!("case {v}\nwhen 1\n  echo 'one'\nelse\n  echo 'other'\nendcase"),
                    format!("echo {v} | size"),
                    "capture c\necho 'in'\nendcapture\necho c".to_string(),
                ];
                let body = self.rng.pick(&bodies).clone();
                (
                    "tag:liquid".into(),
                    format!("{{% liquid\n{} %}}", body.replace('\n', "\n  ")),
                )
            }
            "echo" => {
                let (v, k) = self.expr();
                (format!("tag:echo({k})"), format!("{{% echo {v} %}}"))
            }
            "partial" => self.partial_case(),
            _ => {
                let a = *self.rng.pick(&["{%- ", "{% "]);
                let b = *self.rng.pick(&[" -%}", " %}"]);
                let c = *self.rng.pick(&["{{- ", "{{ "]);
                let d = *self.rng.pick(&[" -}}", " }}"]);
                let template = format!(
                    "a \n {a}if true{b} \n b {c}s{d} \n {a}endif{b} \n c {a}for x in (1..2){b}\n {c}x{d} \n{a}endfor{b}\n"
                );
                ("whitespace-control".into(), template)
            }
        }
    }

    fn partial_case(&mut self) -> (String, String) {
        let source = *self.rng.pick(&[
            "[{{ p }}|{{ x }}|{{ i }}]",
            "{{ forloop.index }}:{{ item }};",
            "{% assign leaked = 'L' %}<{{ part }}>",
            "{{ product.name }}",
            "{% increment c %}",
        ]);
        self.partials.insert("part".into(), source.into());
        let tag = *self.rng.pick(&["render", "render", "include"]);
        let arg = *self.rng.pick(&[
            "",
            ", p: 'v'",
            " with sarr",
            " for sarr",
            " for harr as product",
            " with h as product",
            ", x: i, p: s",
            " for (1..3) as item",
        ]);
        let template = format!("{{% {tag} 'part'{arg} %}}|{{{{ leaked }}}}|{{{{ p }}}}");
        (format!("tag:{tag}"), template)
    }

    fn block_case(&mut self) -> (String, String) {
        let inner = *self.rng.pick(&[
            "{{ s }}",
            "{% if true %}x{% endif %}",
            "{% if %}",
            "{% endfor %}",
            "{{ 'unclosed",
            "{% raw %}r{% endraw %}",
            "{% comment %}nested{% endcomment %}",
            "{{ i | nosuch }}",
            "}} %} {{",
            "{% assign q = 1 %}",
        ]);
        let (kind, template) = match self.rng.below(6) {
            0 | 1 => (
                "raw",
                format!(
                    "{}{{% raw %}}{inner}{{% endraw %}}{}",
                    self.rng.pick(&["", "a "]),
                    self.rng.pick(&["", "{{ i }}", " b"])
                ),
            ),
            2 => (
                "comment",
                format!("x{{% comment %}}{inner}{{% endcomment %}}y{{{{ q }}}}"),
            ),
            3 => ("doc", format!("x{{% doc %}}{inner}{{% enddoc %}}y")),
            4 => (
                "inline-comment",
                format!(
                    "x{{% # {} %}}y",
                    inner.replace("%}", "").replace("{%", "").replace('\n', " ")
                ),
            ),
            _ => (
                "whitespace",
                format!("a {{%- raw -%}} {inner} {{%- endraw -%}} b"),
            ),
        };
        (format!("block:{kind}"), template)
    }
}

/// The standard filters (those python-liquid and Ruby Liquid both define).
pub const FILTERS: &[&str] = &[
    "abs",
    "append",
    "at_least",
    "at_most",
    "base64_decode",
    "base64_encode",
    "base64_url_safe_decode",
    "base64_url_safe_encode",
    "capitalize",
    "ceil",
    "compact",
    "concat",
    "date",
    "default",
    "divided_by",
    "downcase",
    "escape",
    "escape_once",
    "find",
    "find_index",
    "first",
    "floor",
    "has",
    "join",
    "last",
    "lstrip",
    "map",
    "minus",
    "modulo",
    "newline_to_br",
    "plus",
    "prepend",
    "reject",
    "remove",
    "remove_first",
    "remove_last",
    "replace",
    "replace_first",
    "replace_last",
    "reverse",
    "round",
    "rstrip",
    "size",
    "slice",
    "sort",
    "sort_natural",
    "split",
    "strip",
    "strip_html",
    "strip_newlines",
    "sum",
    "times",
    "truncate",
    "truncatewords",
    "uniq",
    "upcase",
    "url_decode",
    "url_encode",
    "where",
];
