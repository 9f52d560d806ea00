//! Builds the test plugins (`tests/plugins/*`) as `wasm32-wasip2` components
//! and stages each as a plugin directory for the tests.

#[path = "../../build-support/wasm_plugins.rs"]
mod wasm_plugins;

use std::path::PathBuf;

use wasm_plugins::PluginCrate;

const TEST_PLUGINS: &[PluginCrate] = &[
    PluginCrate {
        package: "hostile",
        dir: "tests/plugins/hostile",
    },
    PluginCrate {
        package: "conformance",
        dir: "tests/plugins/conformance",
    },
    PluginCrate {
        package: "legacy",
        dir: "tests/plugins/legacy",
    },
];

fn main() {
    println!("cargo:rerun-if-changed=../../build-support");
    let workspace = wasm_plugins::workspace_root(2);
    let stage = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("plugins");
    wasm_plugins::build_and_stage(&workspace, TEST_PLUGINS, &stage);
    println!(
        "cargo:rustc-env=TOOLMESH_TEST_PLUGINS_DIR={}",
        stage.display()
    );
}
