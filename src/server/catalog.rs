//! The services of `--services DIR`: each subdirectory with a service.yaml, looked up on each
//! request so edits show up without a restart (the file is parsed again only when it changed).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::service::{self, Overrides, ParsedServiceFiles, PassEnv, SERVICE_FILE, Service};

/// What `GET /services` and `GET /services/{name}` show of one service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    /// The directory name: the name in the URL.
    pub name: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Why the service cannot run, for invalid ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ServiceInfo {
    fn from_result(name: String, result: Result<Service, String>) -> ServiceInfo {
        match result {
            Ok(s) => ServiceInfo {
                name,
                valid: true,
                runtime: Some(s.runtime),
                entry: Some(s.entry),
                memory_mb: Some(s.memory_mb),
                timeout_ms: Some(s.timeout_ms),
                cpu_limit: Some(s.cpu_limit),
                dependencies: s.dependencies,
                error: None,
            },
            Err(error) => ServiceInfo {
                name,
                valid: false,
                runtime: None,
                entry: None,
                memory_mb: None,
                timeout_ms: None,
                cpu_limit: None,
                dependencies: Vec::new(),
                error: Some(error),
            },
        }
    }
}

pub enum Lookup {
    Found(Box<Service>),
    /// The directory exists with a service.yaml, but it does not load.
    Invalid(String),
    NotFound,
}

pub struct Catalog {
    dir: PathBuf,
    /// What `${NAME}` in a service.yaml may read (`--pass-env`).
    pass: PassEnv,
    /// Each service.yaml parsed once per version of the file.
    parsed: ParsedServiceFiles,
}

/// Whether `dir` holds a service.yaml entry of any kind: a link or a pipe there is listed, and
/// the safe read then says why it cannot be used (nothing is opened here).
fn has_service_file(dir: &Path) -> bool {
    dir.is_dir() && std::fs::symlink_metadata(dir.join(SERVICE_FILE)).is_ok()
}

impl Catalog {
    /// `dir` is canonical, as the paths in service errors are.
    pub fn new(dir: PathBuf, pass: PassEnv) -> Catalog {
        Catalog { dir, pass, parsed: ParsedServiceFiles::default() }
    }

    /// Every subdirectory holding a service.yaml, sorted by name; those that do not load are
    /// listed with their error rather than left out.
    pub fn list(&self) -> std::io::Result<Vec<ServiceInfo>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !has_service_file(&path) {
                continue;
            }
            let result = match service::validate_dns_label(&name) {
                Ok(()) => self.load(&path, &Overrides::default()),
                Err(reason) => Err(format!("directory name {reason}; it cannot be addressed by the API")),
            };
            out.push(ServiceInfo::from_result(name, result));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The service called `name`, with `overrides` applied and validated. The name is checked
    /// to be a DNS label before any path is built from it, so no request reaches outside DIR.
    pub fn lookup(&self, name: &str, overrides: &Overrides) -> Lookup {
        if service::validate_dns_label(name).is_err() {
            return Lookup::NotFound;
        }
        let dir = self.dir.join(name);
        if !has_service_file(&dir) {
            return Lookup::NotFound;
        }
        match self.load(&dir, overrides) {
            Ok(s) => Lookup::Found(Box::new(s)),
            Err(e) => Lookup::Invalid(e),
        }
    }

    pub fn info(&self, name: &str) -> Option<ServiceInfo> {
        match self.lookup(name, &Overrides::default()) {
            Lookup::Found(s) => Some(ServiceInfo::from_result(name.to_string(), Ok(*s))),
            Lookup::Invalid(e) => Some(ServiceInfo::from_result(name.to_string(), Err(e))),
            Lookup::NotFound => None,
        }
    }

    /// A message with the paths below DIR made relative to it.
    pub fn relative(&self, message: &str) -> String {
        message.replace(&format!("{}/", self.dir.display()), "")
    }

    /// Errors name files relative to DIR: clients need the service's file, not the host's layout.
    fn load(&self, dir: &Path, overrides: &Overrides) -> Result<Service, String> {
        let prefix = format!("{}/", self.dir.display());
        service::load_cached(dir, true, overrides, &self.pass, &self.parsed)
            .map_err(|e| e.to_string().replace(&prefix, ""))
    }
}
