//! The tools' arguments: one type per tool (its JSON Schema is what `tools/list` shows), and
//! the parsing that turns a call's arguments into it with an error that names the field.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ToolError;

/// `run_code`: a program that is not on disk, run once in a fresh sandbox. New I/O fields
/// (stdin, program arguments, output files) are added here as optional fields; unknown fields
/// are refused by name, so a client learns at once which ones this ignite takes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunCode {
    /// The runtime: `bun` (the default), `node`, `deno`, `quickjs` or a custom one, optionally
    /// @VERSION, e.g. `node@22`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// The program as one file (TypeScript or JavaScript). Give `code` or `files`, not both.
    #[serde(default)]
    pub code: Option<String>,
    /// The program as files: relative path → text content. The entry file runs and may import
    /// the others.
    #[serde(default)]
    pub files: Option<BTreeMap<String, String>>,
    /// The file to run, relative to the program's directory; by default `index.ts` (or
    /// `index.js`, … the first present).
    #[serde(default)]
    pub entry: Option<String>,
    /// Any JSON value; the program reads it from the environment variable IGNITE_INPUT
    /// (`JSON.parse(process.env.IGNITE_INPUT)`). Default `{}`.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Audit mode (default true): the strictest policy, and the result's `securityAudit` lists
    /// what the kernel reported (denied syscalls, OOM and pids events).
    #[serde(default)]
    pub audit: Option<bool>,
    /// Arguments for the program, after the entry in its argv (`process.argv`; at most 256,
    /// 64 KiB in all).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// The program's stdin, as text (at most 1 MiB); empty by default.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Environment variables, only names the operator allows (`--allow-env`, or the service's
    /// `allowEnv`); never one ignite or the runtime sets.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Give the program an output directory ($IGNITE_OUT_DIR, /tmp/out; at most 8 MiB and 64
    /// files) whose regular files come back in the result's `files` (size, sha256, base64
    /// content). Such a run is never served warm.
    #[serde(default)]
    pub outputs: Option<bool>,
}

/// Per-run limits; each within ignite's ranges (a value outside is refused, not clamped).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Wall-clock limit in milliseconds; the run ends with status `timeout` past it.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Memory limit in MiB; past it the program is killed (status `oom`).
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// CPU limit in cores, e.g. 0.5.
    #[serde(default)]
    pub cpu: Option<f64>,
}

/// `run_service`: one of the operator's services (`list_services` names them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunService {
    /// The service's name, as `list_services` shows it.
    pub name: String,
    /// Any JSON value; the program reads it from IGNITE_INPUT. Default `{}`.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// Lower (or raise, within ignite's ranges) the service's own time and memory limits.
    #[serde(default)]
    pub limits: Option<ServiceLimits>,
    /// Audit mode (default true), as for `run_code`.
    #[serde(default)]
    pub audit: Option<bool>,
    /// Arguments for the program, after the entry in its argv (`process.argv`; at most 256,
    /// 64 KiB in all).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// The program's stdin, as text (at most 1 MiB); empty by default.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Environment variables, only names the operator allows (`--allow-env`, or the service's
    /// `allowEnv`); never one ignite or the runtime sets.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Give the program an output directory ($IGNITE_OUT_DIR, /tmp/out; at most 8 MiB and 64
    /// files) whose regular files come back in the result's `files` (size, sha256, base64
    /// content). Such a run is never served warm.
    #[serde(default)]
    pub outputs: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceLimits {
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub memory_mb: Option<u32>,
}

/// `list_services` takes nothing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `session_create`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionCreate {
    /// Seconds the session lives (default and maximum: the server's settings); it is removed
    /// then, with its files.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// `session_execute`: `run_code`'s fields plus the session; the run sees the session's
/// workspace, read-write, at /tmp/workspace, and what it writes there stays for the next run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionExecute {
    /// The id `session_create` returned.
    pub session_id: String,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub entry: Option<String>,
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub audit: Option<bool>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub outputs: Option<bool>,
}

impl SessionExecute {
    /// The session's id and the program, as `run_code` takes it.
    pub fn split(self) -> (String, RunCode) {
        let SessionExecute { session_id, runtime, code, files, entry, input, limits, audit, args, stdin, env, outputs } =
            self;
        (session_id, RunCode { runtime, code, files, entry, input, limits, audit, args, stdin, env, outputs })
    }
}

/// `session_close`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionClose {
    pub session_id: String,
}

/// `session_list_files`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionListFiles {
    pub session_id: String,
}

/// How a file's content travels in a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Text, as it is.
    Utf8,
    /// Bytes, base64 (standard alphabet, padded).
    Base64,
}

/// `session_read_file`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionReadFile {
    pub session_id: String,
    /// Relative to the workspace, e.g. `out/result.json`: no `..`, not absolute, never through a
    /// symbolic link.
    pub path: String,
    /// `utf8` or `base64`; by default utf8 when the file is valid UTF-8, base64 otherwise (the
    /// result says which).
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

/// `session_write_file`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionWriteFile {
    pub session_id: String,
    /// Relative to the workspace; missing parent directories are created, an existing file is
    /// replaced.
    pub path: String,
    /// The file's content, in `encoding`.
    pub content: String,
    /// `utf8` (the default) or `base64`.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

/// The tools, in the order `tools/list` shows them.
pub const TOOL_NAMES: &[&str] = &[
    "run_code",
    "list_services",
    "run_service",
    "session_create",
    "session_execute",
    "session_list_files",
    "session_read_file",
    "session_write_file",
    "session_close",
];

/// Parses a call's arguments (absent means `{}`) into `T`; the error names the field
/// (`limits.timeoutMs: invalid type: string "5", expected u64`).
pub fn parse<T: DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, ToolError> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() { inner.to_string() } else { format!("{path}: {inner}") };
        ToolError::new("invalid_arguments", message)
    })
}

fn schema<T: JsonSchema>() -> Arc<JsonObject> {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let mut object = match serde_json::to_value(settings.into_generator().into_root_schema_for::<T>()) {
        Ok(serde_json::Value::Object(o)) => o,
        // A derived schema is always an object; an empty one still says "any object".
        _ => JsonObject::new(),
    };
    object.insert("type".into(), "object".into());
    // The type's own doc comment is for this crate's readers; the tool's description is the
    // client's.
    object.remove("description");
    object.remove("title");
    Arc::new(object)
}

fn tool<T: JsonSchema>(name: &'static str, title: &str, description: &'static str, read_only: bool) -> Tool {
    let mut annotations = ToolAnnotations::new();
    annotations.title = Some(title.to_string());
    annotations.read_only_hint = Some(read_only);
    // Code runs in a sandbox with no network: nothing outside it is touched.
    annotations.open_world_hint = Some(false);
    annotations.destructive_hint = Some(false);
    let mut t = Tool::new(name, description, schema::<T>()).annotate(annotations);
    t.title = Some(title.to_string());
    t
}

/// What `tools/list` answers.
pub fn tools() -> Vec<Tool> {
    vec![
        tool::<RunCode>(
            "run_code",
            "Run code",
            "Run JavaScript/TypeScript in a fresh, isolated sandbox (no network, read-only files, memory/CPU/time \
             limits) and return its stdout, stderr, status, exit code and metrics. Give the program as `code` (one \
             file) or `files`; it reads `input` from the IGNITE_INPUT environment variable. A program that fails \
             still returns a result (see `status` and `exitCode`); a request ignite refuses is a tool error.",
            false,
        ),
        tool::<NoArgs>(
            "list_services",
            "List services",
            "The services this server offers (each a directory the operator deployed), with their runtime, \
             entry and limits; invalid ones are listed with their error.",
            true,
        ),
        tool::<RunService>(
            "run_service",
            "Run a service",
            "Run one of the operator's services by name with an `input` (JSON, read from IGNITE_INPUT) and return \
             its stdout, stderr, status, exit code and metrics.",
            false,
        ),
        tool::<SessionCreate>(
            "session_create",
            "Create a session",
            "Create a session: a private workspace (a size-capped directory, mounted at /tmp/workspace) that the \
             session's runs share, for work in several steps. Returns its `id`; close it with session_close. It \
             expires after `ttlSeconds`.",
            false,
        ),
        tool::<SessionExecute>(
            "session_execute",
            "Run code in a session",
            "Like run_code, with the session's workspace mounted read-write at /tmp/workspace: files written there \
             are seen by the session's later runs. Runs of one session take turns.",
            false,
        ),
        tool::<SessionListFiles>(
            "session_list_files",
            "List a session's files",
            "Every entry of the session's workspace (what its runs see under /tmp/workspace): path, size and kind \
             (file, dir, symlink), depth first; links are listed, never followed.",
            true,
        ),
        tool::<SessionReadFile>(
            "session_read_file",
            "Read a file of a session",
            "The content of a regular file of the session's workspace (a path relative to /tmp/workspace), as \
             text (utf8) or base64. Between runs: it waits for a run of the session that is going on.",
            true,
        ),
        tool::<SessionWriteFile>(
            "session_write_file",
            "Write a file into a session",
            "Write a file into the session's workspace (a path relative to /tmp/workspace; parent directories are \
             created, an existing file replaced), for the session's next runs to read. Between runs.",
            false,
        ),
        tool::<SessionClose>(
            "session_close",
            "Close a session",
            "Close a session and remove its workspace (after a run of it still going ends).",
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: serde_json::Value) -> Option<JsonObject> {
        match v {
            serde_json::Value::Object(o) => Some(o),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn run_code_reads_every_field_in_camel_case() {
        let parsed: RunCode = parse(args(json!({
            "runtime": "node@22",
            "files": {"index.ts": "console.log(1)", "lib/a.ts": "export {}"},
            "entry": "index.ts",
            "input": {"n": 3},
            "limits": {"timeoutMs": 2000, "memoryMb": 128, "cpu": 0.5},
            "audit": false
        })))
        .unwrap();
        assert_eq!(parsed.runtime.as_deref(), Some("node@22"));
        assert_eq!(parsed.files.as_ref().map(BTreeMap::len), Some(2));
        let limits = parsed.limits.unwrap();
        assert_eq!((limits.timeout_ms, limits.memory_mb, limits.cpu), (Some(2000), Some(128), Some(0.5)));
        assert_eq!(parsed.input, Some(json!({"n": 3})));
        assert_eq!(parsed.audit, Some(false));
    }

    #[test]
    fn absent_arguments_are_an_empty_object() {
        assert_eq!(parse::<NoArgs>(None).unwrap(), NoArgs {});
        assert_eq!(parse::<RunCode>(None).unwrap(), RunCode::default());
    }

    #[test]
    fn errors_name_the_field_and_what_was_expected() {
        let e = parse::<RunCode>(args(json!({"code": "1", "limits": {"timeoutMs": "5"}}))).unwrap_err();
        assert_eq!(e.code, "invalid_arguments");
        assert!(e.message.starts_with("limits.timeoutMs: invalid type: string \"5\""), "{}", e.message);

        let e = parse::<RunCode>(args(json!({"code": "1", "stdinn": "x"}))).unwrap_err();
        assert!(e.message.contains("unknown field `stdinn`") && e.message.contains("`code`"), "{}", e.message);

        let e = parse::<SessionExecute>(args(json!({"code": "1"}))).unwrap_err();
        assert!(e.message.contains("missing field `sessionId`"), "{}", e.message);

        let e = parse::<RunService>(args(json!({"name": "hello", "limits": {"memoryMb": -1}}))).unwrap_err();
        assert!(e.message.starts_with("limits.memoryMb: invalid value"), "{}", e.message);

        let e =
            parse::<SessionWriteFile>(args(json!({"sessionId": "s", "path": "a", "content": "", "encoding": "hex"})))
                .unwrap_err();
        assert!(e.message.starts_with("encoding: unknown variant `hex`, expected `utf8` or `base64`"), "{}", e.message);

        let e = parse::<NoArgs>(args(json!({"x": 1}))).unwrap_err();
        assert!(e.message.contains("unknown field `x`"), "{}", e.message);
    }

    #[test]
    fn session_execute_splits_into_the_session_and_run_code() {
        let parsed: SessionExecute =
            parse(args(json!({"sessionId": "abc", "code": "console.log(1)", "input": [1]}))).unwrap();
        let (id, run) = parsed.split();
        assert_eq!(id, "abc");
        assert_eq!(run, RunCode { code: Some("console.log(1)".into()), input: Some(json!([1])), ..RunCode::default() });
    }

    #[test]
    fn every_tool_has_an_object_schema_with_camel_case_properties() {
        let tools = tools();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, TOOL_NAMES);
        for t in &tools {
            assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{}", t.name);
            assert!(t.description.as_deref().is_some_and(|d| !d.is_empty()), "{}", t.name);
        }
        let run = &tools[0].input_schema;
        let props = run.get("properties").and_then(|p| p.as_object()).unwrap();
        for field in ["runtime", "code", "files", "entry", "input", "limits", "audit"] {
            assert!(props.contains_key(field), "run_code lacks {field}: {run:?}");
        }
        assert_eq!(run.get("additionalProperties"), Some(&json!(false)));
        assert!(run.get("description").is_none() && run.get("title").is_none(), "{run:?}");
        let exec = tools[4].input_schema.get("required").unwrap();
        let write = &tools[7].input_schema;
        assert_eq!(write.get("required").unwrap(), &json!(["sessionId", "path", "content"]));
        assert_eq!(exec, &json!(["sessionId"]));
    }

    #[test]
    fn the_session_tools_name_where_runs_see_the_workspace() {
        for t in tools().iter().filter(|t| t.name.starts_with("session_") && t.name != "session_close") {
            let d = t.description.as_deref().unwrap_or_default();
            assert!(d.contains(crate::engine::WORKSPACE_DIR), "{}: {d}", t.name);
        }
        assert!(super::super::INSTRUCTIONS.contains(crate::engine::WORKSPACE_DIR));
    }
}
