//! Type stripping of one TypeScript file and the rewriting of its relative `.ts` import
//! specifiers: pure functions of (file name, source text), no I/O.
//!
//! Stripping uses `swc_ts_fast_strip` in strip-only mode (what Node.js runs for
//! `--experimental-strip-types`): type syntax is replaced by blanks, so every line and column of
//! the output is where it was in the source and stack traces point at the user's lines. Syntax
//! that would need code generation (enums, namespaces, parameter properties, `import x =`,
//! `export =`, `<T>expr` casts) is rejected with its position, like TypeScript's
//! `erasableSyntaxOnly`. Specifiers are rewritten in place (`./a.ts` → `./a.js`, `.mts` → `.mjs`,
//! `.cts` → `.cjs`), which keeps positions too: only the `t` becomes a `j`.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use swc_common::errors::{DiagnosticBuilder, Emitter, Handler};
use swc_common::sync::Lrc;
use swc_common::{BytePos, GLOBALS, Globals, SourceMap, Span, Spanned};
use swc_ecma_ast::{CallExpr, Callee, ExportAll, Expr, ImportDecl, Lit, NamedExport, Program};
use swc_ecma_parser::{EsSyntax, Parser, StringInput, Syntax, lexer::Lexer};
use swc_ecma_visit::{Visit, VisitWith};
use swc_ts_fast_strip::{Mode, Options};

/// Part of the staged-app cache key: a staged file depends on the stripper's exact version and
/// on the rules in this file. Bump [`RULES_VERSION`] when the rewriting rules change.
pub const STRIPPER: &str = "swc_ts_fast_strip 60.0.0";
pub const RULES_VERSION: u32 = 1;

/// TypeScript source extensions and what each becomes: (ts, js).
pub const EXTENSIONS: &[(&str, &str)] = &[("ts", "js"), ("mts", "mjs"), ("cts", "cjs")];

/// Declaration files hold types only; nothing of them exists at run time.
pub const DECLARATION_SUFFIXES: &[&str] = &[".d.ts", ".d.mts", ".d.cts"];

/// How a file is treated when staged for a runtime that runs JavaScript only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.ts`, `.mts`, `.cts`: stripped, renamed to the JavaScript extension.
    TypeScript,
    /// `.d.ts` and friends: left out.
    Declaration,
    /// Everything else: copied byte for byte.
    Other,
}

/// Classifies a file name (the last path component, as bytes).
pub fn kind_of(name: &[u8]) -> Kind {
    if DECLARATION_SUFFIXES.iter().any(|s| name.ends_with(s.as_bytes()) && name.len() > s.len()) {
        return Kind::Declaration;
    }
    match js_extension(name) {
        Some(_) => Kind::TypeScript,
        None => Kind::Other,
    }
}

/// The JavaScript extension for a TypeScript file name (`a.ts` → `js`), if it is one.
fn js_extension(name: &[u8]) -> Option<&'static str> {
    EXTENSIONS.iter().find_map(|(ts, js)| {
        let suffix = [b".", ts.as_bytes()].concat();
        (name.len() > suffix.len() && name.ends_with(&suffix)).then_some(*js)
    })
}

/// `dir/a.ts` → `dir/a.js`; names that are not TypeScript are returned unchanged. Works on
/// bytes, so any file name (not only UTF-8) round-trips.
pub fn js_name(name: &[u8]) -> Vec<u8> {
    let mut out = name.to_vec();
    if js_extension(name).is_some() {
        // Every pair in EXTENSIONS differs only in the 't' before the final 's'.
        let at = out.len() - 2;
        out[at] = b'j';
    }
    out
}

/// Why a file cannot be staged, at a byte offset of its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Byte offset into the source (0-based); the caller turns it into line and column.
    pub offset: usize,
    pub message: String,
}

/// A diagnostic as swc emits it: message and primary span.
type Emitted = (String, Option<Span>);

/// Collects the diagnostics swc emits.
struct Collector(Arc<Mutex<Vec<Emitted>>>);

impl Emitter for Collector {
    fn emit(&mut self, db: &mut DiagnosticBuilder<'_>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((db.message(), db.span.primary_span()));
    }
}

/// Whether a file parses as an ES module (`Some(true)`), a script (`Some(false)`), or either.
fn module_kind(name: &str) -> Option<bool> {
    if name.ends_with(".mts") {
        Some(true)
    } else if name.ends_with(".cts") {
        // CommonJS: ESM syntax here would reach the runtime untranslated, so it is a parse error.
        Some(false)
    } else {
        None
    }
}

/// Strips the types from one TypeScript file and rewrites its relative specifiers. `name` is
/// the file's path (for `.mts`/`.cts` semantics and messages). The output has the same lines and
/// columns as the input.
pub fn strip(name: &str, source: &str) -> Result<String, Vec<Diagnostic>> {
    GLOBALS.set(&Globals::new(), || {
        let cm: Lrc<SourceMap> = Lrc::default();
        let collected = Arc::new(Mutex::new(Vec::new()));
        let handler = Handler::with_emitter(true, false, Box::new(Collector(collected.clone())));
        let options = Options {
            filename: Some(name.to_string()),
            module: module_kind(name),
            mode: Mode::StripOnly,
            ..Default::default()
        };
        let result = swc_ts_fast_strip::operate(&cm, &handler, source.to_string(), options);
        match result {
            Ok(out) => rewrite_specifiers(name, &out.code),
            Err(err) => {
                let collected = collected.lock().unwrap_or_else(PoisonError::into_inner);
                let mut diags: Vec<Diagnostic> = collected
                    .iter()
                    .map(|(message, span)| Diagnostic {
                        offset: span
                            .and_then(|s| cm.try_lookup_byte_offset(s.lo).ok())
                            .map_or(0, |f| (f.pos.0 as usize).min(source.len())),
                        message: message.clone(),
                    })
                    .collect();
                if diags.is_empty() {
                    diags.push(Diagnostic { offset: 0, message: err.to_string() });
                }
                diags.sort_by_key(|d| d.offset);
                diags.dedup();
                Err(diags)
            }
        }
    })
}

fn offset_of(pos: BytePos, base: u32, len: usize) -> usize {
    (pos.0.saturating_sub(base) as usize).min(len)
}

/// A string literal that names a module, as it appears in the stripped code.
struct Specifier {
    /// Byte range of the literal including its quotes.
    lo: usize,
    hi: usize,
}

/// Finds the module specifiers of static imports, re-exports, `import()` and `require()` with a
/// literal argument.
#[derive(Default)]
struct SpecifierFinder {
    found: Vec<Specifier>,
    base: u32,
}

impl SpecifierFinder {
    fn add(&mut self, span: Span) {
        let lo = span.lo.0.saturating_sub(self.base) as usize;
        let hi = span.hi.0.saturating_sub(self.base) as usize;
        self.found.push(Specifier { lo, hi });
    }

    fn add_expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Lit(Lit::Str(s)) => self.add(s.span),
            // A template without substitutions is a literal too: import(`./a.ts`).
            Expr::Tpl(t) if t.exprs.is_empty() => self.add(t.span),
            _ => {}
        }
    }
}

impl Visit for SpecifierFinder {
    fn visit_import_decl(&mut self, n: &ImportDecl) {
        self.add(n.src.span);
    }

    fn visit_export_all(&mut self, n: &ExportAll) {
        self.add(n.src.span);
    }

    fn visit_named_export(&mut self, n: &NamedExport) {
        if let Some(src) = &n.src {
            self.add(src.span);
        }
    }

    fn visit_call_expr(&mut self, n: &CallExpr) {
        let is_loader = match &n.callee {
            Callee::Import(_) => true,
            Callee::Expr(e) => matches!(&**e, Expr::Ident(id) if &*id.sym == "require"),
            Callee::Super(_) => false,
        };
        if is_loader
            && let Some(first) = n.args.first()
            && first.spread.is_none()
        {
            self.add_expr(&first.expr);
        }
        n.visit_children_with(self);
    }
}

/// Rewrites `./x.ts` to `./x.js` (and `.mts`/`.cts`) in the import specifiers of stripped code,
/// byte for byte in place. A relative import of a `.tsx`/`.jsx` file is an error: these runtimes
/// do not run JSX.
fn rewrite_specifiers(name: &str, code: &str) -> Result<String, Vec<Diagnostic>> {
    let cm: Lrc<SourceMap> = Lrc::default();
    let fm = cm.new_source_file(Lrc::new(swc_common::FileName::Anon), code.to_string());
    let syntax = Syntax::Es(EsSyntax { import_attributes: true, ..Default::default() });
    let lexer = Lexer::new(syntax, swc_ecma_ast::EsVersion::latest(), StringInput::from(&*fm), None);
    let mut parser = Parser::new_from(lexer);
    let program = match module_kind(name) {
        Some(true) => parser.parse_module().map(Program::Module),
        Some(false) => parser.parse_script().map(Program::Script),
        None => parser.parse_program(),
    };
    let base = fm.start_pos.0;
    let program = program.map_err(|e| {
        // The stripper's output is JavaScript by construction; if it does not parse, say where.
        vec![Diagnostic {
            offset: offset_of(e.span().lo, base, code.len()),
            message: format!("the code left after stripping types does not parse: {}", e.kind().msg()),
        }]
    })?;
    let mut finder = SpecifierFinder { found: Vec::new(), base };
    program.visit_with(&mut finder);

    let mut out = code.as_bytes().to_vec();
    let mut errors = Vec::new();
    for spec in finder.found {
        let Some(raw) = code.get(spec.lo..spec.hi) else { continue };
        let Some(inner) = unquoted(raw) else { continue };
        if !is_relative(inner) {
            continue;
        }
        if inner.ends_with(".tsx") || inner.ends_with(".jsx") {
            errors.push(Diagnostic {
                offset: spec.lo,
                message: format!(
                    "imports {inner:?}, a JSX file: this runtime gets TypeScript with the types stripped, and JSX is not type syntax; run the service on bun or deno, or compile the JSX first"
                ),
            });
            continue;
        }
        if DECLARATION_SUFFIXES.iter().any(|s| inner.ends_with(s)) {
            continue;
        }
        if js_extension(inner.as_bytes()).is_some() {
            // `raw` ends with the closing quote: the 't' to replace is three bytes before it.
            out[spec.hi - 3] = b'j';
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Only ASCII 't' bytes were replaced by 'j': still valid UTF-8.
    String::from_utf8(out)
        .map_err(|_| vec![Diagnostic { offset: 0, message: "rewriting produced invalid UTF-8".into() }])
}

/// The text between matching quotes (or backticks), if it has no escape sequences: a specifier
/// written with escapes is left as it is rather than guessed at.
fn unquoted(raw: &str) -> Option<&str> {
    let quote = raw.chars().next()?;
    if !matches!(quote, '"' | '\'' | '`') || raw.len() < 2 || !raw.ends_with(quote) {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    (!inner.contains('\\') && !inner.contains("${")).then_some(inner)
}

/// `./x` and `../x`: specifiers resolved against the importing file, the only ones a rename of
/// the files in the service directory can affect (bare names are packages).
fn is_relative(spec: &str) -> bool {
    spec.starts_with("./") || spec.starts_with("../")
}

/// 1-based line and column (in characters) of a byte offset, and the text of that line.
pub fn line_col(source: &str, offset: usize) -> (usize, usize, &str) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[offset..].find('\n').map_or(source.len(), |i| offset + i);
    let line = source[..offset].matches('\n').count() + 1;
    let column = source[line_start..offset].chars().count() + 1;
    (line, column, source[line_start..line_end].trim_end_matches('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, src: &str) -> String {
        strip(name, src).unwrap_or_else(|d| panic!("{name}: {d:?}"))
    }

    fn err(name: &str, src: &str) -> Vec<(usize, usize, String)> {
        let diags = strip(name, src).expect_err("should fail");
        diags
            .into_iter()
            .map(|d| {
                let (l, c, _) = line_col(src, d.offset);
                (l, c, d.message)
            })
            .collect()
    }

    fn same_shape(a: &str, b: &str) {
        assert_eq!(a.len(), b.len(), "length changed:\n{a}\n---\n{b}");
        let lines = |s: &str| s.split('\n').map(|l| l.chars().count()).collect::<Vec<_>>();
        assert_eq!(lines(a), lines(b), "line layout changed:\n{a}\n---\n{b}");
    }

    #[test]
    fn types_become_blanks_and_lines_stay() {
        let src = "interface P { x: number }\nconst p: P = { x: 1 } as P;\nfunction f<T>(a: T): T { return a }\nconsole.log(f<number>(p.x)!);\n";
        let out = ok("a.ts", src);
        same_shape(src, &out);
        assert!(!out.contains("interface") && !out.contains(": P") && !out.contains("as P"), "{out}");
        assert!(out.contains("const p    = { x: 1 }     ;"), "{out}");
        assert!(out.contains("console.log(f        (p.x) );"), "{out}");
    }

    #[test]
    fn relative_specifiers_are_rewritten_everywhere() {
        let src = r#"import { a } from "./lib/a.ts";
import b from '../b.mts';
import "./side.cts";
export * from "./all.ts";
export * as ns from "./ns.ts";
export { c } from "./c.ts";
const d = await import("./d.ts");
const e = await import(`./e.ts`);
const f = require("./f.ts");
import pkg from "some-pkg/x.ts";
import abs from "/abs/x.ts";
const dynamic = await import("./" + name + ".ts");
import json from "./data.json" with { type: "json" };
"#;
        let out = ok("m.ts", src);
        same_shape(src, &out);
        for want in [
            r#"from "./lib/a.js""#,
            "from '../b.mjs'",
            r#"import "./side.cjs""#,
            r#"export * from "./all.js""#,
            r#"export * as ns from "./ns.js""#,
            r#"export { c } from "./c.js""#,
            r#"import("./d.js")"#,
            "import(`./e.js`)",
            r#"require("./f.js")"#,
            // Only relative specifiers name files of the service directory.
            r#"from "some-pkg/x.ts""#,
            r#"from "/abs/x.ts""#,
            r#"".ts""#,
            r#"from "./data.json""#,
        ] {
            assert!(out.contains(want), "missing {want}:\n{out}");
        }
    }

    #[test]
    fn type_only_imports_and_exports_disappear() {
        let src = "import type { A } from './a.ts';\nexport type { B } from './b.ts';\nimport { type C, d } from './c.ts';\nlet x: A | C = d;\n";
        let out = ok("t.ts", src);
        same_shape(src, &out);
        assert!(!out.contains("./a.") && !out.contains("./b."), "{out}");
        assert!(out.contains("import {         d } from './c.js';"), "{out}");
    }

    #[test]
    fn declaration_imports_are_left_alone() {
        let out = ok("t.ts", "import './types.d.ts';\n");
        assert!(out.contains("'./types.d.ts'"), "{out}");
    }

    #[test]
    fn parse_errors_point_at_line_and_column() {
        let d = err("bad.ts", "let a = 1;\nlet b: = 2;\n");
        assert_eq!((d[0].0, d[0].1), (2, 8), "{d:?}");
        assert!(d[0].2.contains("Unexpected token"), "{d:?}");
    }

    #[test]
    fn non_erasable_syntax_is_rejected_with_positions() {
        let d = err(
            "e.ts",
            "enum E { A }\nnamespace N { export const x = 1 }\nclass C { constructor(private x: number) {} }\nlet y = <any>1;\n",
        );
        let at: Vec<(usize, usize)> = d.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(1, 1), (2, 1), (3, 31), (4, 9)], "{d:?}");
        assert!(d[0].2.contains("enum"), "{d:?}");
        assert!(d[1].2.contains("namespace"), "{d:?}");
        assert!(d[2].2.contains("parameter property"), "{d:?}");
        // Ambient declarations have no run-time part and are fine.
        ok("d.ts", "declare enum E { A }\ndeclare namespace N { const x: number }\nexport {};\n");
    }

    #[test]
    fn jsx_is_rejected() {
        let d = err("j.ts", "import App from './App.tsx';\n");
        assert_eq!((d[0].0, d[0].1), (1, 17), "{d:?}");
        assert!(d[0].2.contains("JSX"), "{d:?}");
        // JSX syntax itself is not TypeScript (.ts files cannot contain it).
        err("k.ts", "const a = <div/>;\n");
    }

    #[test]
    fn module_kind_follows_the_extension() {
        ok("a.mts", "export const x: number = 1;\n");
        let d = err("a.cts", "import x from './x.cts';\n");
        assert_eq!(d[0].0, 1, "{d:?}");
        let out = ok("a.cts", "const x = require('./x.cts');\nmodule.exports = x as number;\n");
        assert!(out.contains("require('./x.cjs')"), "{out}");
    }

    #[test]
    fn positions_count_characters_after_multibyte_text() {
        let src = "const s = \"héllo ✓\"; let b: = 2;\n";
        let d = err("u.ts", src);
        assert_eq!((d[0].0, d[0].1), (1, 29), "{d:?}");
        let out = ok("u.ts", "const s: string = \"héllo ✓\";\nimport('./x.ts');\n");
        assert!(out.contains("import('./x.js')"), "{out}");
    }

    #[test]
    fn names_map_to_javascript() {
        assert_eq!(js_name(b"a/b.ts"), b"a/b.js");
        assert_eq!(js_name(b"b.mts"), b"b.mjs");
        assert_eq!(js_name(b"b.cts"), b"b.cjs");
        assert_eq!(js_name(b"b.tsx"), b"b.tsx");
        assert_eq!(js_name(b".ts"), b".ts");
        assert_eq!(kind_of(b"x.d.ts"), Kind::Declaration);
        assert_eq!(kind_of(b"x.d.mts"), Kind::Declaration);
        assert_eq!(kind_of(b"x.ts"), Kind::TypeScript);
        assert_eq!(kind_of(b"x.tsx"), Kind::Other);
        assert_eq!(kind_of(b"x.js"), Kind::Other);
        assert_eq!(kind_of(b"d.ts"), Kind::TypeScript);
    }

    #[test]
    fn line_col_handles_edges() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1, "ab"));
        assert_eq!(line_col("ab\ncd", 3), (2, 1, "cd"));
        assert_eq!(line_col("ab\r\ncd", 1), (1, 2, "ab"));
        assert_eq!(line_col("ab", 99), (1, 3, "ab"));
    }

    #[test]
    fn stripper_version_matches_the_lockfile() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).expect("Cargo.lock");
        let (name, version) = STRIPPER.split_once(' ').expect("name version");
        let entry = format!("name = \"{name}\"\nversion = \"{version}\"");
        assert!(lock.contains(&entry), "STRIPPER says {STRIPPER} but Cargo.lock has another version");
    }
}
