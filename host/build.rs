//! Builds the bundled plugins as `wasm32-wasip2` components and embeds them in
//! the host, so that `toolmesh serve` has a working default plugin set with no
//! configuration. Each is staged as a plugin directory (manifest with its
//! hash, and component) and loaded at run time through the same verifying
//! loader as any plugin directory.

#[path = "../build-support/wasm_plugins.rs"]
mod wasm_plugins;

use std::fmt::Write as _;
use std::path::PathBuf;

use wasm_plugins::PluginCrate;

/// The plugins every host serves unless told not to.
const BUNDLED: &[PluginCrate] = &[
    PluginCrate {
        package: "hello",
        dir: "examples/hello",
    },
    PluginCrate {
        package: "permission",
        dir: "plugins/permission",
    },
    PluginCrate {
        package: "discovery",
        dir: "plugins/discovery",
    },
    PluginCrate {
        package: "budget",
        dir: "plugins/budget",
    },
    PluginCrate {
        package: "neural",
        dir: "plugins/neural",
    },
];

fn main() {
    println!("cargo:rerun-if-changed=../build-support");
    let workspace = wasm_plugins::workspace_root(1);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let stage = out_dir.join("bundled");
    let dirs = wasm_plugins::build_and_stage(&workspace, BUNDLED, &stage);

    let mut table = String::from("&[\n");
    for (plugin, dir) in BUNDLED.iter().zip(&dirs) {
        let file = format!("{}.wasm", plugin.package.replace('-', "_"));
        writeln!(
            table,
            "    BundledPlugin {{ manifest: include_str!({manifest:?}), \
             component: include_bytes!({component:?}) }},",
            manifest = dir.join("plugin.toml"),
            component = dir.join(file),
        )
        .expect("writing to a String cannot fail");
    }
    table.push(']');
    std::fs::write(out_dir.join("bundled.rs"), table).expect("write bundled.rs");
    println!("cargo:rustc-env=TOOLMESH_BUNDLED_DIR={}", stage.display());
}
