//! The layering ARCHITECTURE.md describes, checked on the source:
//! - the core's manifest names no face (egui, eframe, egui_plot, the app);
//! - no two source files import each other, directly or through others,
//!   anywhere in the project: the core, the app, the CLI, and every test,
//!   bench and fuzz target.
//!
//! A file imports another when its code names an item defined there: a path
//! in an expression, type, pattern or macro, or a private `use`. Re-exports
//! (`pub use` in a mod.rs) are followed to the file that defines the item,
//! not counted themselves, so a module's front door is not a circle with the
//! files behind it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_core_depends_on_no_face() {
    let manifest = root().join("crates/core/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if !section.contains("dependencies") {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        assert!(
            ![
                "egui",
                "eframe",
                "egui_plot",
                "egui_kittest",
                "squadlab-app",
                "png"
            ]
            .contains(&name),
            "{}: the core depends on {name} in {section}",
            manifest.display()
        );
    }
}

/// Every crate root of the project: the libraries, and the targets the
/// manifests name by path (binaries, tests, benches, fuzz targets).
fn crate_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = [
        "crates/core/src/lib.rs",
        "crates/app/src/lib.rs",
        "src/lib.rs",
    ]
    .iter()
    .map(|p| root().join(p))
    .collect();
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        let path = root().join(manifest);
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(target) = line
                .trim()
                .strip_prefix("path = \"")
                .and_then(|rest| rest.strip_suffix('"'))
                .filter(|t| t.ends_with(".rs"))
            else {
                continue;
            };
            roots.push(path.parent().unwrap().join(target));
        }
    }
    roots
}

#[test]
fn no_two_source_files_anywhere_import_each_other() {
    let roots = crate_roots();
    // The manifests' targets were found: the CLI, both test crates, the
    // benches and the fuzz targets.
    for expected in [
        "src/main.rs",
        "tests/it/main.rs",
        "tests/serial/main.rs",
        "bench/gui_frames.rs",
        "fuzz/fuzz_targets/squad_parser.rs",
    ] {
        assert!(
            roots.contains(&root().join(expected)),
            "{expected} is not among the crate roots checked: {roots:?}"
        );
    }
    for crate_root in &roots {
        let crate_dir = rel(crate_root);
        let modules = Crate::load(crate_root);
        let edges = modules.edges();
        let circles = circles(&edges);
        let shown: Vec<String> = circles
            .iter()
            .map(|files| {
                let mut why = Vec::new();
                for from in files {
                    for (to, path) in &edges[from] {
                        if files.contains(to) {
                            why.push(format!("  {} -> {} ({path})", rel(from), rel(to)));
                        }
                    }
                }
                why.join("\n")
            })
            .collect();
        assert!(
            circles.is_empty(),
            "{crate_dir}: {} import circles:\n{}",
            circles.len(),
            shown.join("\n\n")
        );
        // The check sees real imports: the trainer uses the config, which
        // would be missed if paths did not resolve.
        let sees = |from: &str, to: &str| {
            edges
                .get(&root().join(from))
                .is_some_and(|e| e.contains_key(&root().join(to)))
        };
        if crate_dir == "tests/it/main.rs" {
            assert!(
                sees("tests/it/gui.rs", "tests/common/mod.rs"),
                "the GUI tests' use of tests/common (by #[path]) was not found"
            );
        }
        if crate_dir == "crates/app/src/lib.rs" {
            assert!(sees("crates/app/src/app.rs", "crates/app/src/live.rs"));
            assert!(sees("crates/app/src/live.rs", "crates/app/src/context.rs"));
        }
        if crate_dir == "crates/core/src/lib.rs" {
            let trainer = root().join("crates/core/src/train/trainer.rs");
            assert!(
                edges[&trainer]
                    .keys()
                    .any(|f| f.starts_with(root().join("crates/core/src/config"))),
                "the trainer's imports of the config were not found"
            );
        }
    }
}

/// The app's views: each owns its state and draws from the app context
/// (crates/app/src/context.rs), never reaching into another view or the app.
#[test]
fn no_view_of_the_app_imports_another_view_or_the_app() {
    let src = root().join("crates/app/src");
    let views = [
        "live.rs",
        "results.rs",
        "predictions.rs",
        "playground.rs",
        "new_run.rs",
        "sweeps.rs",
        "sidebar.rs",
        "app.rs",
    ];
    let edges = Crate::load(&src.join("lib.rs")).edges();
    let mut reaches = Vec::new();
    for from in &views[..views.len() - 1] {
        // What a view imports, directly or through the files it imports.
        let mut seen = BTreeSet::new();
        let mut todo = vec![src.join(from)];
        while let Some(file) = todo.pop() {
            for (to, path) in edges.get(&file).into_iter().flatten() {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                    let name = to.file_name().unwrap().to_str().unwrap();
                    if views.contains(&name) {
                        reaches.push(format!("  {from} -> {} ({path})", rel(to)));
                    }
                }
            }
        }
        assert!(
            seen.contains(&src.join("context.rs")),
            "{from} does not draw from the app context"
        );
    }
    assert!(
        reaches.is_empty(),
        "views reaching other views or the app:\n{}",
        reaches.join("\n")
    );
}

/// The core's layers, lowest first, as ARCHITECTURE.md gives them: a module
/// may import its own layer and those below.
const LAYERS: &[&[&str]] = &[
    &[
        "config", "rng", "text", "fsutil", "host", "faults", "hub", "numeric", "family",
    ],
    &["schema"],
    &["data"],
    &["model", "memory"],
    &["eval"],
    &["train"],
    &["store"],
    &["report", "sweep"],
];

#[test]
fn the_core_imports_only_down_its_layers() {
    let src = root().join("crates/core/src");
    let edges = Crate::load(&src.join("lib.rs")).edges();
    let layer_of = |file: &Path| -> Option<(String, usize)> {
        let top = file.strip_prefix(&src).ok()?.components().next()?;
        let name = top
            .as_os_str()
            .to_str()?
            .trim_end_matches(".rs")
            .to_string();
        let layer = LAYERS.iter().position(|l| l.contains(&name.as_str()))?;
        Some((name, layer))
    };
    let mut upward = Vec::new();
    let mut pairs = BTreeSet::new();
    for (from, imports) in &edges {
        if from.ends_with("lib.rs") {
            continue;
        }
        let (from_module, from_layer) = layer_of(from)
            .unwrap_or_else(|| panic!("{} is in no layer of ARCHITECTURE.md", rel(from)));
        for (to, path) in imports {
            let Some((to_module, to_layer)) = layer_of(to) else {
                continue;
            };
            pairs.insert((from_module.clone(), to_module.clone()));
            if to_layer > from_layer {
                upward.push(format!(
                    "  {} ({from_module}, layer {from_layer}) -> {} ({to_module}, layer {to_layer}) ({path})",
                    rel(from),
                    rel(to)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports up the layers:\n{}",
        upward.join("\n")
    );
    // The imports the layers are for were seen: the store reads the trainer's
    // files through the schema, the trainer drives the model, sweeps draw
    // from the rng.
    for (from, to) in [
        ("store", "schema"),
        ("train", "model"),
        ("sweep", "rng"),
        ("data", "config"),
    ] {
        assert!(
            pairs.contains(&(from.to_string(), to.to_string())),
            "no import of {to} by {from} was found"
        );
    }
    for (from, to) in [
        ("store", "train"),
        ("report", "model"),
        ("sweep", "model"),
        ("config", "data"),
    ] {
        assert!(
            !pairs.contains(&(from.to_string(), to.to_string())),
            "{from} imports {to}"
        );
    }
}

/// The check's own power, on a made-up crate: a circle through a `use` and a
/// path is found; a mod.rs's re-export of the file behind it is not one.
#[test]
fn the_check_finds_a_circle_and_lets_a_front_door_be() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\nmod m;\n");
    write("a.rs", "use super::b::B;\npub struct A;\nfn f(_: B) {}\n");
    write(
        "b.rs",
        "pub struct B;\nfn g() { let _ = format!(\"{:?}\", crate::a::A); }\n",
    );
    write("m/mod.rs", "mod inner;\npub use inner::X;\npub struct Y;\n");
    write("m/inner.rs", "pub struct X;\nfn k(_: super::Y) {}\n");
    let edges = Crate::load(&dir.path().join("lib.rs")).edges();
    let found = circles(&edges);
    let files = |names: &[&str]| -> BTreeSet<PathBuf> {
        names.iter().map(|n| dir.path().join(n)).collect()
    };
    assert_eq!(found, vec![files(&["a.rs", "b.rs"])]);

    // A test crate's shared module, reached by `#[path]` from its main.rs,
    // that names the file which imports it.
    write(
        "t/main.rs",
        "#[path = \"../common/mod.rs\"]\nmod common;\nmod case;\n",
    );
    write(
        "t/case.rs",
        "use crate::common::helper;\npub struct Fixture;\n",
    );
    write(
        "common/mod.rs",
        "pub fn helper(_: crate::case::Fixture) {}\n",
    );
    let edges = Crate::load(&dir.path().join("t/main.rs")).edges();
    assert_eq!(
        circles(&edges),
        vec![files(&["common/mod.rs", "t/case.rs"])]
    );
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Sets of files that reach each other (Tarjan's strongly connected components
/// of more than one file).
fn circles(edges: &BTreeMap<PathBuf, BTreeMap<PathBuf, String>>) -> Vec<BTreeSet<PathBuf>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeMap<PathBuf, String>>,
        index: HashMap<&'a Path, usize>,
        low: HashMap<&'a Path, usize>,
        stack: Vec<&'a Path>,
        on_stack: BTreeSet<&'a Path>,
        found: Vec<BTreeSet<PathBuf>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Path) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_path();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.insert(w.to_path_buf());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    self.found.push(set);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_path()) {
            t.visit(v);
        }
    }
    t.found
}

/// One module: a file, or an inline `mod x { … }` within one.
#[derive(Default)]
struct Module {
    file: PathBuf,
    parent: Option<usize>,
    /// Items defined here: functions, types, traits, constants, macros.
    items: BTreeSet<String>,
    children: BTreeMap<String, usize>,
    /// `use` names: local name → the path as written.
    imports: BTreeMap<String, Vec<String>>,
    /// `use x::*`, as written.
    globs: Vec<Vec<String>>,
    /// Paths the code names, as written, and whether they came from a
    /// re-export (which only aliases).
    named: Vec<Vec<String>>,
}

struct Crate {
    modules: Vec<Module>,
}

impl Crate {
    fn load(lib: &Path) -> Crate {
        let mut krate = Crate {
            modules: Vec::new(),
        };
        let file = parse(lib);
        let dir = lib.parent().unwrap().to_path_buf();
        krate.add_module(lib, &dir, None, &file.items);
        krate
    }

    /// Adds a module with these items; `dir` is where its `mod x;` files live.
    fn add_module(
        &mut self,
        file: &Path,
        dir: &Path,
        parent: Option<usize>,
        items: &[syn::Item],
    ) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            file: file.to_path_buf(),
            parent,
            ..Default::default()
        });
        for item in items {
            let mut m = std::mem::take(&mut self.modules[id]);
            match item {
                syn::Item::Mod(module) => {
                    let name = module.ident.to_string();
                    self.modules[id] = m;
                    let child = match &module.content {
                        Some((_, inner)) => {
                            self.add_module(file, &dir.join(&name), Some(id), inner)
                        }
                        None => {
                            // A crate root and a mod.rs declare from their own
                            // folder; any other file from the one named after it.
                            let owns_dir = file.parent() == Some(dir);
                            let path = module_file(dir, owns_dir, &name, &module.attrs);
                            let parsed = parse(&path);
                            let child_dir = if path.file_name().is_some_and(|f| f == "mod.rs") {
                                path.parent().unwrap().to_path_buf()
                            } else {
                                dir.join(&name)
                            };
                            self.add_module(&path, &child_dir, Some(id), &parsed.items)
                        }
                    };
                    self.modules[id].children.insert(name, child);
                    continue;
                }
                syn::Item::Use(u) => {
                    let reexport = !matches!(u.vis, syn::Visibility::Inherited);
                    let mut flat = Vec::new();
                    flatten_use(&u.tree, Vec::new(), &mut flat);
                    for (path, alias) in flat {
                        match alias {
                            Some(name) => {
                                if !reexport {
                                    m.named.push(path.clone());
                                }
                                m.imports.insert(name, path);
                            }
                            None => m.globs.push(path),
                        }
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        m.items.insert(name);
                    }
                    let mut paths = PathCollector::default();
                    paths.visit_item(other);
                    m.named.extend(paths.paths);
                }
            }
            self.modules[id] = m;
        }
        id
    }

    /// Every file's imports: the files its named paths resolve to, with one
    /// path for each, to show.
    fn edges(&self) -> BTreeMap<PathBuf, BTreeMap<PathBuf, String>> {
        let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, String>> = BTreeMap::new();
        for (id, m) in self.modules.iter().enumerate() {
            let entry = edges.entry(m.file.clone()).or_default();
            for path in &m.named {
                if let Some(target) = self.resolve_named(id, path, 0) {
                    if target != m.file {
                        entry.entry(target).or_insert_with(|| path.join("::"));
                    }
                }
            }
        }
        edges
    }

    /// The file defining what `path`, written in module `id`, names.
    fn resolve_named(&self, id: usize, path: &[String], depth: usize) -> Option<PathBuf> {
        let (module, rest) = self.absolute(id, path, depth, true)?;
        self.resolve_in(module, &rest, depth)
    }

    /// Where a written path starts: a module and the segments after it.
    fn absolute(
        &self,
        id: usize,
        path: &[String],
        depth: usize,
        through_globs: bool,
    ) -> Option<(usize, Vec<String>)> {
        if depth > 16 || path.is_empty() {
            return None;
        }
        let first = path[0].as_str();
        let rest = path[1..].to_vec();
        let m = &self.modules[id];
        match first {
            "crate" => Some((0, rest)),
            "self" => Some((id, rest)),
            "super" => {
                let parent = m.parent?;
                if rest.first().is_some_and(|s| s == "super") {
                    self.absolute(parent, &rest, depth + 1, through_globs)
                } else {
                    Some((parent, rest))
                }
            }
            _ if m.children.contains_key(first) || m.items.contains(first) => {
                Some((id, path.to_vec()))
            }
            _ if m.imports.contains_key(first) => {
                let mut full = m.imports[first].clone();
                full.extend(rest);
                self.absolute(id, &full, depth + 1, through_globs)
            }
            // A glob's own path names a module, never through another glob.
            _ if !through_globs => None,
            _ => m.globs.iter().find_map(|glob| {
                let (g, g_rest) = self.absolute(id, glob, depth + 1, false)?;
                let g = self.module_at(g, &g_rest)?;
                let target = &self.modules[g];
                let known = target.children.contains_key(first)
                    || target.items.contains(first)
                    || target.imports.contains_key(first);
                known.then(|| (g, path.to_vec()))
            }),
        }
    }

    /// The module a path of module names leads to.
    fn module_at(&self, mut id: usize, path: &[String]) -> Option<usize> {
        for seg in path {
            id = *self.modules[id].children.get(seg)?;
        }
        Some(id)
    }

    /// The file that defines `path` within module `id`.
    fn resolve_in(&self, id: usize, path: &[String], depth: usize) -> Option<PathBuf> {
        if depth > 16 {
            return None;
        }
        let first = path.first()?;
        let m = &self.modules[id];
        if let Some(&child) = m.children.get(first) {
            return self.resolve_in(child, &path[1..], depth + 1);
        }
        if m.items.contains(first) {
            return Some(m.file.clone());
        }
        if let Some(import) = m.imports.get(first) {
            let mut full = import.clone();
            full.extend(path[1..].iter().cloned());
            return self.resolve_named(id, &full, depth + 1);
        }
        m.globs.iter().find_map(|glob| {
            let mut full = glob.clone();
            full.extend(path.iter().cloned());
            self.resolve_named(id, &full, depth + 1)
        })
    }
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file of `mod name;` declared in `dir`, honouring `#[path]`.
fn module_file(dir: &Path, owns_dir: bool, name: &str, attrs: &[syn::Attribute]) -> PathBuf {
    for attr in attrs {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if nv.path.is_ident("path") {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                {
                    // `#[path]` is relative to the declaring file's folder:
                    // `dir` for a crate root and a mod.rs, its parent otherwise.
                    let base = if owns_dir { dir } else { dir.parent().unwrap() };
                    return lexically_normal(&base.join(s.value()));
                }
            }
        }
    }
    let flat = dir.join(format!("{name}.rs"));
    if flat.is_file() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// `a/b/../c` as `a/c`: one file, one name, whichever way it was reached.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

/// `use a::{b, c::d as e, f::*}` as (path, Some(local name)) and (path, None)
/// for globs.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let with = |s: String| {
        let mut p = prefix.clone();
        p.push(s);
        p
    };
    match tree {
        syn::UseTree::Path(p) => flatten_use(&p.tree, with(p.ident.to_string()), out),
        syn::UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned();
            out.push((prefix.clone(), name));
        }
        syn::UseTree::Name(n) => out.push((with(n.ident.to_string()), Some(n.ident.to_string()))),
        syn::UseTree::Rename(r) => {
            out.push((with(r.ident.to_string()), Some(r.rename.to_string())))
        }
        syn::UseTree::Glob(_) => out.push((prefix, None)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix.clone(), out);
            }
        }
    }
}

/// Every path an item's code names, macros' token streams included.
#[derive(Default)]
struct PathCollector {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.paths
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        tokens_paths(mac.tokens.clone(), &mut self.paths);
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Inline modules are modules of their own (Crate::add_module).
    }
}

/// `a::b::c` runs in a macro's tokens, and lone identifiers.
fn tokens_paths(tokens: proc_macro2::TokenStream, out: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let mut current: Vec<String> = Vec::new();
    let mut colons = 0;
    let flush = |current: &mut Vec<String>, out: &mut Vec<Vec<String>>| {
        if !current.is_empty() {
            out.push(std::mem::take(current));
        }
    };
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => {
                if colons != 2 {
                    flush(&mut current, out);
                }
                current.push(ident.to_string());
                colons = 0;
            }
            TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
            TokenTree::Group(g) => {
                flush(&mut current, out);
                colons = 0;
                tokens_paths(g.stream(), out);
            }
            _ => {
                flush(&mut current, out);
                colons = 0;
            }
        }
    }
    flush(&mut current, out);
}
