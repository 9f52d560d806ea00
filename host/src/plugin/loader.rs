//! The loader: turns a plugin (a directory, or a bundled manifest and
//! component) into a [`LoadedPlugin`]: manifest checked, signature and trust
//! decided, component hash verified, compiled (or loaded from the compile
//! cache), WIT version and capabilities checked, access decided, linked, and
//! its tools listed and validated. Each failure is a [`LoadError`] that says
//! what is wrong and where.
//!
//! The loader owns the policy a plugin is loaded under (levels, trust,
//! the operator's plugin configurations, the files root); the runtime it
//! loads into only enforces what the loader decided.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::Component;

use super::access;
use super::bundled::{BUNDLED, BundledPlugin};
use super::files::PluginFiles;
use super::manifest::{Capability, ContentHash, Manifest};
use super::resource::{MAX_ITEMS, Namespace, PluginPrompt, PluginResource, PluginTemplate};
use super::tool::{MAX_CATALOG_BYTES, MAX_TOOLS, Tool};
use super::trust::{
    PROVENANCE_FILE, PeerRefusal, Provenance, REFUSE, SIGNATURE_FILE, Signature, SignatureError,
    Trust, TrustPolicy,
};
use crate::level::Levels;
use crate::runtime::{Hook, Origin, PluginCode, Runtime};

/// The `toolmesh:plugin` version this host implements.
pub const WIT_VERSION: semver::Version = semver::Version::new(0, 2, 0);

/// The older version it still loads plugins of (tools only).
pub const WIT_VERSION_COMPAT: semver::Version = semver::Version::new(0, 1, 0);
const WIT_PACKAGE: &str = "toolmesh:plugin/";

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory (the plugin directory, or an install's source).
    Dir(PathBuf),
    /// Built into the host binary.
    Bundled,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(path) => write!(f, "{}", path.display()),
            Source::Bundled => f.write_str("(bundled)"),
        }
    }
}

/// Why a plugin was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not valid.
    #[error("bad manifest: {0}")]
    Manifest(String),
    /// The manifest states no hash (directory plugins must).
    #[error(
        "the manifest has no `hash`; the component's hash is {actual}: add `hash = \"{actual}\"` \
         if you trust this file"
    )]
    MissingHash {
        /// The component's hash.
        actual: ContentHash,
    },
    /// The component is not the file the manifest describes.
    #[error("hash mismatch: the manifest says {expected} but the component is {actual}")]
    HashMismatch {
        /// From the manifest.
        expected: ContentHash,
        /// Of the file.
        actual: ContentHash,
    },
    /// The file is not a WebAssembly component.
    #[error("not a component: {0}")]
    NotAComponent(String),
    /// Built against an incompatible version of the `toolmesh:plugin` WIT.
    #[error(
        "built for `{interface}`, but this host implements toolmesh:plugin {WIT_VERSION} \
         (compatible: 0.2.x, and 0.1.x); rebuild it with a matching toolmesh-sdk"
    )]
    WitVersion {
        /// The interface name as the component has it.
        interface: String,
    },
    /// Asks for a security level the host does not have.
    #[error("{0}")]
    Level(String),
    /// Imports a capability its manifest does not ask for, or one the host lacks.
    #[error("capability not granted: {0}")]
    Capability(String),
    /// The host cannot link it (an import it does not provide, say).
    #[error("cannot link the component: {0}")]
    Link(String),
    /// Listing its tools failed.
    #[error("listing its tools failed: {0}")]
    List(String),
    /// Its load hook refused (or failed).
    #[error("its load hook refused: {0}")]
    Hook(String),
    /// A tool spec is not acceptable.
    #[error("bad tool: {0}")]
    Tool(String),
    /// The signature is malformed or does not match (a tampered plugin).
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The trust policy refuses it.
    #[error("not trusted: {0}")]
    Untrusted(String),
}

/// A plugin ready to serve.
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Where it came from.
    pub source: Source,
    /// Its component's hash.
    pub hash: ContentHash,
    /// Who vouches for it (and so the highest level it may run at).
    pub trust: Trust,
    /// Whether the component was compiled now or loaded from the cache.
    pub origin: Origin,
    /// The linked component.
    pub code: PluginCode,
    /// Its tools, in the order the plugin listed them.
    pub tools: Vec<Arc<Tool>>,
    /// How its names and URIs are served.
    pub namespace: Namespace,
    /// Its fixed resources, as listed.
    pub resources: Vec<PluginResource>,
    /// Its resource templates, as listed.
    pub templates: Vec<PluginTemplate>,
    /// Its prompts, as listed.
    pub prompts: Vec<PluginPrompt>,
    /// Whether it completes prompt arguments and template variables.
    pub completes: bool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.name)
            .field("source", &self.source)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

/// A plugin directory as read from disk: the manifest's text, the manifest,
/// the component, and the component's actual hash.
struct DirContents {
    text: String,
    manifest: Manifest,
    wasm: Vec<u8>,
    hash: ContentHash,
}

/// Reads the manifest and the component of the plugin in `dir`.
fn read_dir(files: &PluginFiles) -> Result<DirContents, LoadError> {
    let text = files.manifest_text()?;
    let manifest = Manifest::parse(&text).map_err(LoadError::Manifest)?;
    let wasm = files.read(&manifest.component)?;
    let hash = ContentHash::of(&wasm);
    Ok(DirContents {
        text,
        manifest,
        wasm,
        hash,
    })
}

/// Which plugins to load.
#[derive(Debug, Clone)]
pub struct PluginSet {
    /// Load the plugins built into the binary.
    pub bundled: bool,
    /// Load every plugin in this directory. A plugin here replaces a bundled
    /// plugin of the same name.
    pub dir: Option<PathBuf>,
    /// Plugins not to load (the operator disabled them).
    pub disabled: BTreeSet<String>,
}

/// The policy plugins load under, as the operator configured it.
#[derive(Debug, Clone, Default)]
pub struct LoadPolicy {
    /// The security levels plugins may run at.
    pub levels: Levels,
    /// Which publishers are trusted, and the level ceilings of the rest.
    pub trust: TrustPolicy,
    /// Each plugin's configuration (JSON object text), by plugin name.
    pub plugin_configs: BTreeMap<String, String>,
    /// Where the plugins' own files directories are (`None`: relative
    /// `[[fs]]` paths are refused).
    pub files_root: Option<PathBuf>,
    /// Plugins whose tools are named without the `<plugin>__` prefix.
    pub unprefixed: BTreeSet<String>,
}

/// Loads plugins into a runtime under the operator's policy.
pub struct Loader {
    runtime: Arc<Runtime>,
    levels: Levels,
    trust: TrustPolicy,
    plugin_configs: BTreeMap<String, Arc<str>>,
    files_root: Option<PathBuf>,
    unprefixed: BTreeSet<String>,
}

impl Loader {
    /// A loader into `runtime` under `policy`.
    pub fn new(runtime: Arc<Runtime>, policy: LoadPolicy) -> Self {
        Self {
            runtime,
            levels: policy.levels,
            trust: policy.trust,
            plugin_configs: policy
                .plugin_configs
                .into_iter()
                .map(|(name, json)| (name, Arc::from(json)))
                .collect(),
            files_root: policy.files_root,
            unprefixed: policy.unprefixed,
        }
    }

    /// The runtime plugins load into.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The operator's trust policy.
    pub fn trust(&self) -> &TrustPolicy {
        &self.trust
    }

    /// Loads `plugin` again from where it came from (its lists are read
    /// anew), through the same checks as the first time.
    pub async fn reload(&self, plugin: &LoadedPlugin) -> Result<LoadedPlugin, LoadError> {
        self.load_source(&plugin.manifest.name, &plugin.source)
            .await
    }

    /// Loads plugin `name` from `source`.
    pub async fn load_source(
        &self,
        name: &str,
        source: &Source,
    ) -> Result<LoadedPlugin, LoadError> {
        match source {
            Source::Dir(dir) => self.load_dir(dir).await,
            Source::Bundled => {
                let bundled = BUNDLED
                    .iter()
                    .find(|b| bundled_name(b).as_deref() == Some(name))
                    .ok_or_else(|| LoadError::Manifest(format!("no bundled plugin `{name}`")))?;
                self.load_bundled(bundled).await
            }
        }
    }

    /// Loads the plugin in directory `dir`.
    pub async fn load_dir(&self, dir: &Path) -> Result<LoadedPlugin, LoadError> {
        let files = PluginFiles::open(dir)?;
        let plugin = read_dir(&files)?;
        let trust = trust_of(&self.trust, &files, plugin.text.as_bytes(), &plugin.hash)?;
        let source = Source::Dir(dir.to_owned());
        self.load(plugin.manifest, plugin.wasm, plugin.hash, source, trust)
            .await
    }

    /// Loads a plugin built into the host.
    pub async fn load_bundled(&self, bundled: &BundledPlugin) -> Result<LoadedPlugin, LoadError> {
        let manifest = Manifest::parse(bundled.manifest).map_err(LoadError::Manifest)?;
        self.load(
            manifest,
            bundled.component.to_vec(),
            ContentHash::of(bundled.component),
            Source::Bundled,
            Trust::Bundled,
        )
        .await
    }

    /// Loads a plugin whose component `wasm` hashes to `actual`.
    async fn load(
        &self,
        manifest: Manifest,
        wasm: Vec<u8>,
        actual: ContentHash,
        source: Source,
        trust: Trust,
    ) -> Result<LoadedPlugin, LoadError> {
        let level = self
            .levels
            .capped(&manifest.level, self.trust.ceiling(&trust))
            .map_err(LoadError::Level)?;
        if level.name != manifest.level {
            tracing::warn!(
                plugin = %manifest.name,
                "asks for level `{}` but runs at `{}`: {trust}",
                manifest.level,
                level.name
            );
        }
        let hash = verify_hash(&manifest, actual)?;
        check_header(&wasm)?;
        // Compiling takes milliseconds to seconds of CPU: keep it off the executor.
        let compiler = self.runtime.clone();
        let (component, origin) =
            tokio::task::spawn_blocking(move || compiler.compile(&wasm, &hash))
                .await
                .map_err(|e| LoadError::NotAComponent(format!("the compiler stopped: {e}")))?
                .map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;
        check_interfaces(&self.runtime, &component, &manifest)?;
        let access = access::decide(&manifest, &level, self.files_root.as_deref());
        for refused in &access.refused {
            tracing::warn!(plugin = %manifest.name, "not granted: {refused}");
        }
        let config = self
            .plugin_configs
            .get(&manifest.name)
            .cloned()
            .unwrap_or_else(|| Arc::from("{}"));
        let code = self
            .runtime
            .prepare(&manifest.name, level, access, config, &component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let catalog = self
            .runtime
            .describe(&code)
            .await
            .map_err(|e| LoadError::List(e.to_string()))?;
        let specs = catalog.tools;
        if specs.len() > MAX_TOOLS {
            return Err(LoadError::Tool(format!(
                "the plugin lists {} tools; at most {MAX_TOOLS} are allowed",
                specs.len()
            )));
        }
        let prefixed = !self.unprefixed.contains(&manifest.name);
        let namespace = Namespace::new(&manifest.name, prefixed);
        // What every `tools/list` carries for this plugin, bounded as a whole.
        let catalog_bytes: usize = specs
            .iter()
            .map(|s| {
                s.name.len()
                    + s.title.as_ref().map_or(0, String::len)
                    + s.description.len()
                    + s.input_schema.len()
                    + s.output_schema.as_ref().map_or(0, String::len)
            })
            .sum();
        if catalog_bytes > MAX_CATALOG_BYTES {
            return Err(LoadError::Tool(format!(
                "the plugin's tool list is {catalog_bytes} bytes (names, titles, descriptions \
                 and schemas); at most {MAX_CATALOG_BYTES} are allowed"
            )));
        }
        let mut tools: Vec<Arc<Tool>> = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut tool =
                Tool::from_spec_named(&manifest.name, spec, prefixed).map_err(LoadError::Tool)?;
            tool.requires = manifest.requires.get(&tool.name).cloned();
            if tools.iter().any(|t| t.name == tool.name) {
                return Err(LoadError::Tool(format!(
                    "tool `{}` is listed twice",
                    tool.name
                )));
            }
            tools.push(Arc::new(tool));
        }
        let has_tool = |name: &str| tools.iter().any(|t| t.name == name);
        for tool in manifest.requires.keys() {
            if !has_tool(tool) {
                return Err(LoadError::Manifest(format!(
                    "`[tools.{tool}]` names a tool the plugin does not have"
                )));
            }
        }
        for resource in &manifest.resources {
            if !has_tool(&resource.tool) {
                return Err(LoadError::Manifest(format!(
                    "resource `{}` is served by tool `{}`, which the plugin does not have",
                    resource.name, resource.tool
                )));
            }
        }
        let offers = Offers::check(
            &namespace,
            catalog.resources,
            catalog.templates,
            catalog.prompts,
        )
        .map_err(LoadError::Tool)?;
        // Last: the plugin may refuse to serve (a configuration it cannot use).
        self.runtime
            .hook(&code, Hook::Load)
            .await
            .map_err(|e| LoadError::Hook(e.to_string()))?;
        Ok(LoadedPlugin {
            manifest,
            source,
            hash,
            trust,
            origin,
            code,
            tools,
            namespace,
            resources: offers.resources,
            templates: offers.templates,
            prompts: offers.prompts,
            completes: catalog.completes,
        })
    }
}

/// A plugin's resources, templates and prompts, checked.
struct Offers {
    resources: Vec<PluginResource>,
    templates: Vec<PluginTemplate>,
    prompts: Vec<PluginPrompt>,
}

impl Offers {
    fn check(
        namespace: &Namespace,
        resources: Vec<crate::wit::ResourceSpec>,
        templates: Vec<crate::wit::TemplateSpec>,
        prompts: Vec<crate::wit::PromptSpec>,
    ) -> Result<Self, String> {
        for (what, count) in [
            ("resources", resources.len()),
            ("resource templates", templates.len()),
            ("prompts", prompts.len()),
        ] {
            if count > MAX_ITEMS {
                return Err(format!(
                    "the plugin lists {count} {what}; at most {MAX_ITEMS} are allowed"
                ));
            }
        }
        let resources = resources
            .into_iter()
            .map(|spec| PluginResource::new(namespace, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let templates = templates
            .into_iter()
            .map(|spec| PluginTemplate::new(namespace, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let prompts = prompts
            .into_iter()
            .map(|spec| PluginPrompt::new(namespace, spec))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, r) in resources.iter().enumerate() {
            if resources[..i].iter().any(|o| o.spec.uri == r.spec.uri) {
                return Err(format!("resource `{}` is listed twice", r.spec.uri));
            }
        }
        for (i, p) in prompts.iter().enumerate() {
            if prompts[..i].iter().any(|o| o.spec.name == p.spec.name) {
                return Err(format!("prompt `{}` is listed twice", p.spec.name));
            }
        }
        Ok(Self {
            resources,
            templates,
            prompts,
        })
    }
}

/// Signs the plugin in `dir` with `keypair` (its manifest must state the
/// component's hash) and returns the manifest and the signature for
/// `plugin.sig`.
pub fn sign_dir(
    dir: &Path,
    keypair: &libp2p::identity::ed25519::Keypair,
) -> Result<(Manifest, Signature), LoadError> {
    let plugin = read_dir(&PluginFiles::open(dir)?)?;
    let hash = verify_hash(&plugin.manifest, plugin.hash)?;
    let signature = Signature::sign(keypair, plugin.text.as_bytes(), &hash);
    Ok((plugin.manifest, signature))
}

/// The trust the plugin in `dir` earns: its signature (if any) must match
/// the manifest and component exactly; a plugin installed from a peer must
/// still carry a trusted signature; the policy may refuse unsigned plugins.
fn trust_of(
    policy: &TrustPolicy,
    files: &PluginFiles,
    manifest_text: &[u8],
    component: &ContentHash,
) -> Result<Trust, LoadError> {
    let signature_text = files.optional_text(SIGNATURE_FILE)?;
    if let Some(text) = files.optional_text(PROVENANCE_FILE)? {
        let provenance: Provenance = toml::from_str(&text)
            .map_err(|e| LoadError::Manifest(format!("bad {PROVENANCE_FILE}: {}", e.message())))?;
        return match policy.check_from_peer(signature_text.as_deref(), manifest_text, component) {
            Ok(s) => Ok(Trust::FromPeer {
                publisher: s.publisher,
                peer: provenance.peer,
            }),
            Err(PeerRefusal::Tampered(e)) => Err(LoadError::Signature(e)),
            Err(refusal) => Err(LoadError::Untrusted(format!(
                "received from peer {}: {refusal}",
                provenance.peer
            ))),
        };
    }
    let signature = match signature_text {
        Some(text) => {
            let signature = Signature::parse(&text)?;
            signature.verify(manifest_text, component)?;
            Some(signature)
        }
        None => None,
    };
    let trust = policy.classify(signature.as_ref());
    if policy.ceiling(&trust) == Some(REFUSE) {
        return Err(LoadError::Untrusted(format!(
            "{trust}, and `[trust] unsigned = \"{REFUSE}\"` refuses plugins without a trusted \
             signature"
        )));
    }
    Ok(trust)
}

/// The plugin directories inside `dir`, sorted by name. Hidden entries (an
/// install in progress) and plain files are passed over; a directory without
/// a manifest is kept, so that loading it reports the missing file.
/// The name in the manifest of the plugin in `dir`, if it has a readable one.
pub fn manifest_name(dir: &Path) -> Option<String> {
    let text = PluginFiles::open(dir).ok()?.manifest_text().ok()?;
    Manifest::parse(&text).ok().map(|m| m.name)
}

/// The name of a bundled plugin.
pub fn bundled_name(bundled: &BundledPlugin) -> Option<String> {
    Manifest::parse(bundled.manifest).ok().map(|m| m.name)
}

/// The plugin directories in `dir` (its subdirectories that are not
/// hidden), sorted.
pub fn plugin_dirs(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let path = entry.path();
        if hidden || !path.is_dir() {
            continue;
        }
        dirs.push(path);
    }
    dirs.sort();
    Ok(dirs)
}

/// The component's hash, if the manifest states it and it is `actual`.
fn verify_hash(manifest: &Manifest, actual: ContentHash) -> Result<ContentHash, LoadError> {
    match manifest.hash {
        None => Err(LoadError::MissingHash { actual }),
        Some(expected) if expected != actual => Err(LoadError::HashMismatch { expected, actual }),
        Some(_) => Ok(actual),
    }
}

/// Tells a component from a core module or a non-wasm file before compiling,
/// for a clearer message than the parser's.
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    const COMPONENT: &[u8] = &[0x0d, 0, 1, 0];
    match (wasm.get(..4), wasm.get(4..8)) {
        (Some(MAGIC), Some(COMPONENT)) => Ok(()),
        (Some(MAGIC), Some(CORE_MODULE)) => Err(LoadError::NotAComponent(
            "this is a core WebAssembly module; build the plugin with \
             `cargo build --target wasm32-wasip2` to get a component"
                .into(),
        )),
        (Some(MAGIC), _) => Err(LoadError::NotAComponent(
            "unknown WebAssembly version or layer".into(),
        )),
        _ => Err(LoadError::NotAComponent(
            "the file is not WebAssembly (no `\\0asm` header)".into(),
        )),
    }
}

/// Checks that the component speaks a compatible `toolmesh:plugin` version
/// and imports only the host capabilities its manifest asks for.
fn check_interfaces(
    runtime: &Runtime,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let engine = runtime.engine();
    let mut exports_tools = false;
    let mut versions = BTreeSet::new();
    for (name, _) in ty.exports(engine) {
        if let Some((interface, version)) = split_toolmesh_name(name)? {
            exports_tools |= interface == "tools";
            versions.insert(version.minor);
        }
    }
    if !exports_tools {
        let exports: Vec<_> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        return Err(LoadError::Link(format!(
            "it does not export `toolmesh:plugin/tools` (its exports: {}); is it a toolmesh plugin?",
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        )));
    }
    for (name, _) in ty.imports(engine) {
        let Some((interface, version)) = split_toolmesh_name(name)? else {
            continue;
        };
        versions.insert(version.minor);
        // Types, the operator's configuration, the caller's identity and
        // resource announcements are there for every plugin; the client
        // interface checks each question's capability when it is asked.
        if matches!(
            interface,
            "types" | "config" | "caller" | "notify" | "client"
        ) {
            continue;
        }
        let Some(needed) = Capability::of_interface(interface) else {
            return Err(LoadError::Capability(format!(
                "it imports `toolmesh:plugin/{interface}`, which this host does not provide"
            )));
        };
        if !manifest.capabilities.contains(&needed) {
            return Err(LoadError::Capability(format!(
                "it imports `{name}` but its manifest does not ask for the `{}` capability",
                needed.name()
            )));
        }
    }
    if versions.len() > 1 {
        return Err(LoadError::Link(
            "it mixes toolmesh:plugin 0.1 and 0.2 interfaces; rebuild it with one toolmesh-sdk"
                .into(),
        ));
    }
    Ok(())
}

/// For `toolmesh:plugin/<interface>@<version>` names: the interface and the
/// version, refusing incompatible versions. `None` for other packages.
fn split_toolmesh_name(name: &str) -> Result<Option<(&str, semver::Version)>, LoadError> {
    let Some(rest) = name.strip_prefix(WIT_PACKAGE) else {
        return Ok(None);
    };
    let wit_version = |interface: &str| LoadError::WitVersion {
        interface: interface.to_owned(),
    };
    let (interface, version) = rest.split_once('@').ok_or_else(|| wit_version(name))?;
    let version = semver::Version::parse(version).map_err(|_| wit_version(name))?;
    // Semver: before 1.0 the minor version is the breaking one.
    let compatible = [&WIT_VERSION, &WIT_VERSION_COMPAT]
        .iter()
        .any(|served| version.major == 0 && version.minor == served.minor);
    if !compatible {
        return Err(wit_version(name));
    }
    Ok(Some((interface, version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        let core = check_header(b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(core.contains("core WebAssembly module"), "{core}");
        let text = check_header(b"hello").unwrap_err().to_string();
        assert!(text.contains("not WebAssembly"), "{text}");
    }

    #[test]
    fn wit_versions_are_checked() {
        assert!(matches!(
            split_toolmesh_name("toolmesh:plugin/tools@0.1.7"),
            Ok(Some(("tools", _)))
        ));
        assert!(matches!(
            split_toolmesh_name("toolmesh:plugin/resources@0.2.3"),
            Ok(Some(("resources", _)))
        ));
        assert!(matches!(
            split_toolmesh_name("wasi:io/streams@0.2.6"),
            Ok(None)
        ));
        for bad in [
            "toolmesh:plugin/tools@0.3.0",
            "toolmesh:plugin/tools@1.0.0",
            "toolmesh:plugin/tools",
        ] {
            let err = split_toolmesh_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("this host implements toolmesh:plugin 0.2.0"),
                "{err}"
            );
        }
    }
}
