//! `toolmesh plugin list`: what a host loaded (each plugin's level, trust,
//! quotas, access and tools) and what it refused and why, as text for the
//! operator.

use std::fmt::Write as _;
use std::path::Path;

use super::Stack;
use crate::capability::Access;

/// The listing of `stack`, whose plugin directory is `plugins_dir`.
pub fn render(stack: &Stack, plugins_dir: &Path) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_listing(&mut out, stack, plugins_dir);
    out
}

fn write_listing(out: &mut String, stack: &Stack, plugins_dir: &Path) -> std::fmt::Result {
    let snapshot = stack.registry.snapshot();
    writeln!(out, "plugin directory: {}", plugins_dir.display())?;
    if snapshot.plugins().len() == 0 {
        writeln!(out, "no plugins loaded")?;
    }
    for plugin in snapshot.plugins() {
        let m = &plugin.manifest;
        let level = plugin.code.level();
        writeln!(
            out,
            "\n{} {} [{}] from {} ({})",
            m.name, m.version, level.name, plugin.source, plugin.trust
        )?;
        writeln!(
            out,
            "  quotas: fuel {}, memory {} bytes, {} handles, {} ms, output {} bytes",
            level.fuel,
            level.memory_bytes,
            level.handles,
            level.timeout.as_millis(),
            level.max_output_bytes
        )?;
        write_access(out, plugin.code.access())?;
        writeln!(out, "  {}", m.description)?;
        writeln!(out, "  hash: {}", plugin.hash)?;
        for tool in &plugin.tools {
            writeln!(out, "  - {}: {}", tool.qualified_name, tool.description)?;
        }
    }
    for (name, source) in stack.control.known() {
        let record = stack.ops.states.get(&name);
        if record.state == crate::ops::state::PluginState::Disabled {
            let why = record.reason.map(|r| format!(": {r}")).unwrap_or_default();
            writeln!(
                out,
                "\nDISABLED {name} from {source}{why} (`toolmesh plugin enable {name}`)"
            )?;
        }
    }
    for failure in &stack.failures {
        writeln!(out, "\nREFUSED {failure}")?;
    }
    Ok(())
}

fn write_access(out: &mut String, access: &Access) -> std::fmt::Result {
    let mut granted: Vec<String> = access.imports.iter().map(ToString::to_string).collect();
    for preopen in &access.preopens {
        let mode = if preopen.writable {
            "read-write"
        } else {
            "read-only"
        };
        granted.push(format!(
            "fs {} = {} ({mode})",
            preopen.guest,
            preopen.host.display()
        ));
    }
    for (name, _) in &access.env {
        granted.push(format!("env {name}"));
    }
    if granted.is_empty() {
        writeln!(out, "  granted: nothing")?;
    } else {
        writeln!(out, "  granted: {}", granted.join(", "))?;
    }
    for refused in &access.refused {
        writeln!(out, "  not granted: {refused}")?;
    }
    Ok(())
}
