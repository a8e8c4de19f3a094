//! `.env` files read exactly as python-dotenv 1.2.4 (what pip installs with
//! `nost-tools==3.6.0`) reads them; `nost_tools` calls
//! `load_dotenv(override=True)` on the same files.
//!
//! This is a port of python-dotenv's `parser.py` and `variables.py`, rule for
//! rule, so a file shared between the two gives the same values
//! (`tests/tests/dotenv_python.rs` compares them on a corpus):
//!
//! - The file is read as UTF-8 text with universal newlines (`\r\n` and `\r`
//!   become `\n`, as Python's text mode does); a leading BOM is dropped.
//! - A binding is `[export ]KEY[ = value][ # comment]`; blank lines and
//!   whitespace before a binding are skipped. `export` needs at least one
//!   space or tab after it.
//! - A key is a run of characters other than `=`, `#` and whitespace, or
//!   `'…'` (anything but `'`). A key without `=` has no value (`None`): it
//!   sets nothing, so the process environment keeps its value.
//! - Quoted values may span lines; inside them a backslash always takes the
//!   next character with it (so `\'` or `\"` do not close the value).
//! - `'single quoted'`: only `\\` and `\'` are decoded.
//! - `"double quoted"`: `\\ \' \" \a \b \f \n \r \t \v` are decoded, other
//!   escapes kept as written.
//! - `KEY= # comment` (whitespace between `=` and `#`) is the empty value;
//!   `KEY=#x` is `#x`.
//! - Unquoted: the rest of the line, cut at the first whitespace followed by
//!   `#`, trailing whitespace removed (`a#b` keeps its `#`).
//! - After a quoted value only whitespace and a `#` comment may follow.
//! - A line that does not parse is skipped (python-dotenv logs a warning);
//!   parsing goes on with the next line.
//! - Expansion, in **every** value (quoted with `'` or `"` or not): only
//!   `${NAME}` and `${NAME:-default}`; `$NAME` and a lone `$` are literal.
//!   `NAME` is looked up in the values of the file defined above it first,
//!   then in the process environment (python-dotenv's `override=True`). A
//!   name bound to no value above (a key without `=`) expands to the empty
//!   string. `:-default` applies only when the name is unset, not when empty.

/// What a `.env` text holds after expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotEnvValues {
    /// Keys in order of first appearance; a later binding of the same key
    /// replaces the value. `None`: a key written without `=`.
    pub values: Vec<(String, Option<String>)>,
    /// 1-based lines of bindings that did not parse and were skipped.
    pub invalid_lines: Vec<usize>,
}

impl DotEnvValues {
    /// The value of `key`: `None` when absent, `Some(None)` for a key
    /// without `=`.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}

/// Python's `str.isspace()`, which `\s` and `rstrip()` use.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `[^\S\r\n]`: whitespace other than a line break.
fn inline_space(c: char) -> bool {
    py_space(c) && c != '\n' && c != '\r'
}

struct Reader {
    s: Vec<char>,
    pos: usize,
    line: usize,
}

struct Failed;

impl Reader {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn advance_to(&mut self, end: usize) {
        self.line += self.s[self.pos..end].iter().filter(|c| **c == '\n').count();
        self.pos = end;
    }

    fn skip_while(&mut self, f: impl Fn(char) -> bool) {
        let mut end = self.pos;
        while end < self.s.len() && f(self.s[end]) {
            end += 1;
        }
        self.advance_to(end);
    }

    /// `(?:export[^\S\r\n]+)?`
    fn export(&mut self) {
        let word: Vec<char> = "export".chars().collect();
        let end = self.pos + word.len();
        if self.s.get(self.pos..end) == Some(&word[..])
            && self.s.get(end).copied().is_some_and(inline_space)
        {
            self.advance_to(end);
            self.skip_while(inline_space);
        }
    }

    /// `'([^']+)'` or `([^=\#\s]+)`; `None` for a comment.
    fn key(&mut self) -> Result<Option<String>, Failed> {
        match self.peek() {
            Some('#') => Ok(None),
            Some('\'') => {
                let start = self.pos + 1;
                let mut end = start;
                while end < self.s.len() && self.s[end] != '\'' {
                    end += 1;
                }
                if end == start || end >= self.s.len() {
                    return Err(Failed);
                }
                let key: String = self.s[start..end].iter().collect();
                self.advance_to(end + 1);
                Ok(Some(key))
            }
            _ => {
                let start = self.pos;
                let mut end = start;
                while end < self.s.len()
                    && !matches!(self.s[end], '=' | '#')
                    && !py_space(self.s[end])
                {
                    end += 1;
                }
                if end == start {
                    return Err(Failed);
                }
                let key: String = self.s[start..end].iter().collect();
                self.advance_to(end);
                Ok(Some(key))
            }
        }
    }

    /// `Q((?:\\.|[^Q\\])*)Q` (DOTALL): a backslash always takes the next
    /// character with it, the first quote not so taken closes the value.
    fn quoted(&mut self, q: char) -> Result<String, Failed> {
        let start = self.pos + 1;
        let mut i = start;
        let close = loop {
            match self.s.get(i) {
                None => return Err(Failed),
                Some('\\') if i + 1 < self.s.len() => i += 2,
                Some('\\') => return Err(Failed),
                Some(c) if *c == q => break i,
                Some(_) => i += 1,
            }
        };
        let body: String = self.s[start..close].iter().collect();
        self.advance_to(close + 1);
        Ok(body)
    }

    fn value(&mut self) -> Result<String, Failed> {
        match self.peek() {
            Some('\'') => Ok(decode_escapes(&self.quoted('\'')?, "\\'")),
            Some('"') => Ok(decode_escapes(&self.quoted('"')?, "\\'\"abfnrtv")),
            None | Some('\n') | Some('\r') => Ok(String::new()),
            Some(_) => {
                let start = self.pos;
                let mut end = start;
                while end < self.s.len() && !matches!(self.s[end], '\n' | '\r') {
                    end += 1;
                }
                let part: Vec<char> = self.s[start..end].to_vec();
                self.advance_to(end);
                Ok(strip_unquoted(&part))
            }
        }
    }

    /// `(?:[^\S\r\n]*#[^\r\n]*)?`
    fn comment(&mut self) {
        let mut i = self.pos;
        while i < self.s.len() && inline_space(self.s[i]) {
            i += 1;
        }
        if self.s.get(i) == Some(&'#') {
            while i < self.s.len() && !matches!(self.s[i], '\n' | '\r') {
                i += 1;
            }
            self.advance_to(i);
        }
    }

    /// `[^\S\r\n]*(?:\r\n|\n|\r|$)`
    fn end_of_line(&mut self) -> Result<(), Failed> {
        let mut i = self.pos;
        while i < self.s.len() && inline_space(self.s[i]) {
            i += 1;
        }
        match self.s.get(i) {
            None => {}
            Some('\r') if self.s.get(i + 1) == Some(&'\n') => i += 2,
            Some('\n') | Some('\r') => i += 1,
            Some(_) => return Err(Failed),
        }
        self.advance_to(i);
        Ok(())
    }

    /// `[^\r\n]*(?:\r|\n|\r\n)?`
    fn rest_of_line(&mut self) {
        let mut i = self.pos;
        while i < self.s.len() && !matches!(self.s[i], '\n' | '\r') {
            i += 1;
        }
        if i < self.s.len() {
            i += 1;
        }
        self.advance_to(i);
    }

    fn binding(&mut self) -> Result<Option<(String, Option<String>)>, Failed> {
        self.export();
        let key = self.key()?;
        self.skip_while(inline_space);
        let value = if self.peek() == Some('=') {
            let eq = self.pos;
            self.advance_to(self.pos + 1);
            self.skip_while(inline_space);
            // `KEY= # comment`: empty value (`KEY=#x` keeps `#x`).
            if self.pos > eq + 1 && self.peek() == Some('#') {
                Some(String::new())
            } else {
                Some(self.value()?)
            }
        } else {
            None
        };
        self.comment();
        self.end_of_line()?;
        Ok(key.map(|k| (k, value)))
    }
}

/// `re.sub(r"\s+#.*", "", part).rstrip()`
fn strip_unquoted(part: &[char]) -> String {
    let mut cut = part.len();
    let mut i = 0;
    while i < part.len() {
        if py_space(part[i]) {
            let mut j = i;
            while j < part.len() && py_space(part[j]) {
                j += 1;
            }
            if part.get(j) == Some(&'#') {
                cut = i;
                break;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let mut end = cut;
    while end > 0 && py_space(part[end - 1]) {
        end -= 1;
    }
    part[..end].iter().collect()
}

/// Replace `\X` for X in `set` by what Python's `unicode-escape` makes of it.
fn decode_escapes(text: &str, set: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && set.contains(n)
        {
            chars.next();
            out.push(match n {
                'a' => '\x07',
                'b' => '\x08',
                'f' => '\x0c',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\x0b',
                other => other,
            });
        } else {
            out.push(c);
        }
    }
    out
}

/// The bindings of a `.env` text before expansion, and the lines skipped.
pub fn parse_bindings(text: &str) -> (Vec<(String, Option<String>)>, Vec<usize>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut r = Reader {
        s: normalized.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut bindings = Vec::new();
    let mut invalid = Vec::new();
    while r.pos < r.s.len() {
        r.skip_while(py_space);
        if r.pos >= r.s.len() {
            break;
        }
        let line = r.line;
        match r.binding() {
            Ok(Some(b)) => bindings.push(b),
            Ok(None) => {}
            Err(Failed) => {
                invalid.push(line);
                r.rest_of_line();
            }
        }
    }
    (bindings, invalid)
}

/// python-dotenv's `${NAME}` / `${NAME:-default}` expansion of one value.
fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<Option<String>>) -> String {
    let s: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == '$' && s.get(i + 1) == Some(&'{') {
            let name_start = i + 2;
            let mut j = name_start;
            while j < s.len() && s[j] != '}' && s[j] != ':' {
                j += 1;
            }
            let name: String = s[name_start..j.min(s.len())].iter().collect();
            let matched = match s.get(j) {
                Some('}') => Some((None, j + 1)),
                Some(':') if s.get(j + 1) == Some(&'-') => {
                    let d_start = j + 2;
                    let mut k = d_start;
                    while k < s.len() && s[k] != '}' {
                        k += 1;
                    }
                    (k < s.len()).then(|| (Some(s[d_start..k].iter().collect::<String>()), k + 1))
                }
                _ => None,
            };
            if let Some((default, end)) = matched {
                let resolved = match lookup(&name) {
                    Some(v) => v.unwrap_or_default(),
                    None => default.unwrap_or_default(),
                };
                out.push_str(&resolved);
                i = end;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// What python-dotenv's `dotenv_values` (and so `load_dotenv(override=True)`)
/// makes of `text`, looking up names not bound in the file with `process`.
pub fn dotenv_values(text: &str, process: &dyn Fn(&str) -> Option<String>) -> DotEnvValues {
    let (bindings, invalid_lines) = parse_bindings(text);
    let mut values: Vec<(String, Option<String>)> = Vec::new();
    for (key, raw) in bindings {
        let resolved = raw.map(|v| {
            let lookup = |name: &str| -> Option<Option<String>> {
                match values.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => Some(v.clone()),
                    None => process(name).map(Some),
                }
            };
            expand(&v, &lookup)
        });
        match values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = resolved,
            None => values.push((key, resolved)),
        }
    }
    DotEnvValues {
        values,
        invalid_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Option<Option<String>> {
        let v = dotenv_values(text, &|_| None);
        v.values.into_iter().find(|(k, _)| k == "P").map(|(_, v)| v)
    }

    #[test]
    fn the_issue_lines() {
        let s = |x: &str| Some(Some(x.to_owned()));
        assert_eq!(one("P='gu$est'"), s("gu$est"));
        assert_eq!(one("P=\"gu$est\""), s("gu$est"));
        assert_eq!(one("P=a$1b"), s("a$1b"));
        assert_eq!(one("P=$"), s("$"));
        assert_eq!(one("P=\"tab\\there\""), s("tab\there"));
        assert_eq!(one("P"), Some(None));
        assert_eq!(one("export P=x # c"), s("x"));
        assert_eq!(one("P=a#b"), s("a#b"));
        assert_eq!(one("P='a\nb'"), s("a\nb"));
    }

    #[test]
    fn expansion_prefers_the_file() {
        let env = |n: &str| (n == "HOME").then(|| "/h".to_owned());
        let v = dotenv_values("HOME=/f\nA=${HOME}/x\nB=${NOPE:-d}\nC=$HOME\n", &env);
        assert_eq!(v.get("A"), Some(Some("/f/x")));
        assert_eq!(v.get("B"), Some(Some("d")));
        assert_eq!(v.get("C"), Some(Some("$HOME")));
        let v = dotenv_values("A=${HOME}", &env);
        assert_eq!(v.get("A"), Some(Some("/h")));
    }

    #[test]
    fn bad_lines_are_skipped() {
        let v = dotenv_values("A='x'y\nB=2\n=3\nC=\"open\n", &|_| None);
        assert_eq!(v.get("A"), None);
        assert_eq!(v.get("B"), Some(Some("2")));
        assert_eq!(v.invalid_lines, vec![1, 3, 4]);
    }
}
