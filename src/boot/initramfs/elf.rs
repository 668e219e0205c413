//! The shared libraries a dynamically linked executable needs, found the way
//! the dynamic loader finds them, by reading the ELF dynamic section (never by
//! running `ldd`, which executes the binary's loader on the host).
//!
//! Search order for each `DT_NEEDED` name, as `ld.so(8)` documents it (minus
//! `LD_LIBRARY_PATH`, which the guest does not set):
//! 1. a name containing `/` is a path;
//! 2. `DT_RPATH` of the object that needs it, then of its loaders up to the
//!    executable, unless that object has a `DT_RUNPATH`;
//! 3. `DT_RUNPATH` of the object that needs it;
//! 4. the directories of `/etc/ld.so.conf` (and its `include`s), which is
//!    what `ldconfig` puts into `/etc/ld.so.cache`;
//! 5. the default directories (multiarch first, then `/lib64`, `/lib`, ...).
//!
//! A candidate is taken only if it is an ELF of the same class and machine as
//! the executable (a 32-bit `libc.so.6` in `/usr/lib` is skipped, as ld.so
//! skips it). `$ORIGIN` is expanded with the host directory for the search and
//! with the guest directory for the placement, so `$ORIGIN/../lib` layouts
//! keep working wherever the executable lands in the guest.
//!
//! Placement: a library found through any other directory is put at the same
//! path in the guest (lexically, not canonicalised: `/lib/x86_64-linux-gnu/...`
//! stays that, even where `/lib` is a symlink on the host). The default
//! directories are searched by the guest's ld.so without any cache; for the
//! `ld.so.conf` ones the caller ships the host's `/etc/ld.so.cache`, whose
//! entries then point at those same paths.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::Endianness;

/// Default library directories, in the order glibc searches them on
/// x86-64 (Debian's multiarch dirs, then the biarch and plain ones).
pub const DEFAULT_LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path} is not an ELF file bpfcompat can read: {why}")]
    Parse { path: PathBuf, why: String },
    #[error(
        "library {library} needed by {needed_by} was not found on this host \
         (searched {searched}); install the package that provides it"
    )]
    MissingLibrary {
        library: String,
        needed_by: PathBuf,
        searched: String,
    },
    #[error("the program interpreter {interpreter} of {binary} does not exist on this host")]
    MissingInterpreter {
        interpreter: PathBuf,
        binary: PathBuf,
    },
}

/// One file to copy: from `host` to `guest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GuestFile {
    pub host: PathBuf,
    pub guest: PathBuf,
}

/// Where the loader looks, besides the per-object RPATH/RUNPATH.
#[derive(Debug, Clone)]
pub struct SearchPath {
    /// From `/etc/ld.so.conf`, in file order.
    pub conf_dirs: Vec<PathBuf>,
    pub default_dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// This host's: `/etc/ld.so.conf` plus [`DEFAULT_LIB_DIRS`].
    pub fn host() -> Self {
        Self {
            conf_dirs: read_ld_so_conf(Path::new("/etc/ld.so.conf")),
            default_dirs: DEFAULT_LIB_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

/// Everything `host_exe` needs at run time besides itself: its interpreter
/// (`PT_INTERP`) and the transitive `DT_NEEDED` closure, with the paths they
/// take in the guest when the executable is put at `guest_exe`. Empty for a
/// static executable (static-pie included).
pub fn closure(host_exe: &Path, guest_exe: &Path) -> Result<Vec<GuestFile>, ElfError> {
    closure_with(host_exe, guest_exe, &SearchPath::host())
}

/// [`closure`] with an explicit search path (for tests).
pub fn closure_with(
    host_exe: &Path,
    guest_exe: &Path,
    search: &SearchPath,
) -> Result<Vec<GuestFile>, ElfError> {
    if !is_elf(host_exe)? {
        // A script: its interpreter (`#!/bin/sh`) is the guest's business.
        return Ok(Vec::new());
    }
    let exe = parse(host_exe)?;
    let mut out = Vec::new();
    let mut placed: HashSet<PathBuf> = HashSet::new();
    // Sonames the interpreter provides itself (libc.so.6 needs ld-linux).
    let mut provided: HashSet<String> = HashSet::new();

    if let Some(interp) = &exe.interpreter {
        let interp = PathBuf::from(interp);
        if !interp.exists() {
            return Err(ElfError::MissingInterpreter {
                interpreter: interp,
                binary: host_exe.to_owned(),
            });
        }
        let info = parse(&interp)?;
        if let Some(soname) = info.soname {
            provided.insert(soname);
        }
        if let Some(name) = interp.file_name() {
            provided.insert(name.to_string_lossy().into_owned());
        }
        placed.insert(interp.clone());
        out.push(GuestFile {
            host: interp.clone(),
            guest: interp,
        });
    } else if exe.needed.is_empty() {
        return Ok(out);
    }

    // The executable's origin is where the kernel found it: its real path.
    let host_exe_real = std::fs::canonicalize(host_exe).map_err(|err| ElfError::Read {
        path: host_exe.to_owned(),
        err,
    })?;
    let root = Loaded {
        host: host_exe_real,
        guest: lexical(guest_exe),
        info: exe,
        // RPATHs of the loaders, innermost last (only the executable here).
        inherited_rpath: Vec::new(),
    };
    let class = (root.info.is_64, root.info.machine);
    let mut seen_sonames: HashSet<String> = provided.clone();
    let mut queue = VecDeque::from([root]);
    while let Some(object) = queue.pop_front() {
        for name in &object.info.needed {
            if seen_sonames.contains(name) {
                continue;
            }
            let found = find_library(name, &object, search, class)?;
            seen_sonames.insert(name.clone());
            if let Some(soname) = &found.info.soname {
                seen_sonames.insert(soname.clone());
            }
            if placed.insert(found.guest.clone()) {
                out.push(GuestFile {
                    host: found.host.clone(),
                    guest: found.guest.clone(),
                });
            }
            queue.push_back(found);
        }
    }
    Ok(out)
}

/// What we read from one ELF file.
#[derive(Debug, Clone, Default)]
struct ElfInfo {
    is_64: bool,
    machine: u16,
    interpreter: Option<String>,
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Vec<String>,
    runpath: Option<Vec<String>>,
}

/// An object in the closure: where it is on the host and where it goes.
struct Loaded {
    host: PathBuf,
    guest: PathBuf,
    info: ElfInfo,
    /// `(entries, host origin, guest origin)` of the DT_RPATHs of the objects
    /// that loaded this one, executable first.
    inherited_rpath: Vec<(Vec<String>, PathBuf, PathBuf)>,
}

fn find_library(
    name: &str,
    needer: &Loaded,
    search: &SearchPath,
    class: (bool, u16),
) -> Result<Loaded, ElfError> {
    let host_origin = needer.host.parent().unwrap_or(Path::new("/")).to_owned();
    let guest_origin = needer.guest.parent().unwrap_or(Path::new("/")).to_owned();
    let mut searched: Vec<String> = Vec::new();

    // (host dir, guest dir) candidates in loader order.
    let mut dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match try_candidate(&path, class) {
            Some(info) => Ok(Loaded {
                guest: lexical(&path),
                host: path,
                info,
                inherited_rpath: Vec::new(),
            }),
            None => Err(missing(name, needer, vec![name.to_owned()])),
        };
    }
    let mut own_rpath_chain = needer.inherited_rpath.clone();
    own_rpath_chain.push((
        needer.info.rpath.clone(),
        host_origin.clone(),
        guest_origin.clone(),
    ));
    if needer.info.runpath.is_none() {
        // ld.so walks from the needing object up to the executable.
        for (entries, host_o, guest_o) in own_rpath_chain.iter().rev() {
            dirs.extend(expand(entries, host_o, guest_o));
        }
    }
    if let Some(runpath) = &needer.info.runpath {
        dirs.extend(expand(runpath, &host_origin, &guest_origin));
    }
    for dir in search.conf_dirs.iter().chain(&search.default_dirs) {
        dirs.push((dir.clone(), dir.clone()));
    }

    for (host_dir, guest_dir) in dirs {
        let candidate = host_dir.join(name);
        searched.push(host_dir.display().to_string());
        if let Some(info) = try_candidate(&candidate, class) {
            // The loader chain's RPATHs apply to this object's own needs
            // too, unless it has a RUNPATH (checked when searching from it).
            return Ok(Loaded {
                host: lexical(&candidate),
                guest: lexical(&guest_dir.join(name)),
                info,
                inherited_rpath: own_rpath_chain,
            });
        }
    }
    searched.dedup();
    Err(missing(name, needer, searched))
}

fn missing(name: &str, needer: &Loaded, searched: Vec<String>) -> ElfError {
    ElfError::MissingLibrary {
        library: name.to_owned(),
        needed_by: needer.host.clone(),
        searched: searched.join(", "),
    }
}

/// A candidate is usable if it parses as an ELF of the executable's class.
fn try_candidate(path: &Path, (is_64, machine): (bool, u16)) -> Option<ElfInfo> {
    if !path.is_file() {
        return None;
    }
    let info = parse(path).ok()?;
    (info.is_64 == is_64 && info.machine == machine).then_some(info)
}

/// RPATH/RUNPATH entries to `(host dir, guest dir)` pairs. Entries with
/// `$LIB` or `$PLATFORM` are skipped (their values are loader-specific).
fn expand(entries: &[String], host_origin: &Path, guest_origin: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for entry in entries {
        if entry.is_empty() || entry.contains("$LIB") || entry.contains("${LIB}") {
            continue;
        }
        if entry.contains("$PLATFORM") || entry.contains("${PLATFORM}") {
            continue;
        }
        let subst = |origin: &Path| {
            let origin = origin.to_string_lossy();
            entry
                .replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin)
        };
        let host = PathBuf::from(subst(host_origin));
        let guest = PathBuf::from(subst(guest_origin));
        if host.is_relative() {
            // Relative entries are relative to the process's cwd: unusable.
            continue;
        }
        out.push((lexical(&host), lexical(&guest)));
    }
    out
}

/// Removes `.` and resolves `..` without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// What the initramfs needs to know of a program beyond its libraries.
pub struct Program {
    /// `e_machine`.
    pub machine: u16,
    /// Needs neither a program interpreter nor shared libraries.
    pub is_static: bool,
}

/// The [`Program`] at `path`; `None` for a script.
pub fn program(path: &Path) -> Result<Option<Program>, ElfError> {
    if !is_elf(path)? {
        return Ok(None);
    }
    let info = parse(path)?;
    Ok(Some(Program {
        machine: info.machine,
        is_static: info.interpreter.is_none() && info.needed.is_empty(),
    }))
}

/// Starts with the ELF magic (a script does not).
pub fn is_elf(path: &Path) -> Result<bool, ElfError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(4).read(&mut magic))
        .map_err(|err| ElfError::Read {
            path: path.to_owned(),
            err,
        })?;
    Ok(read == 4 && magic == *b"\x7fELF")
}

fn parse(path: &Path) -> Result<ElfInfo, ElfError> {
    let data = std::fs::read(path).map_err(|err| ElfError::Read {
        path: path.to_owned(),
        err,
    })?;
    let fail = |why: String| ElfError::Parse {
        path: path.to_owned(),
        why,
    };
    match object::FileKind::parse(&*data).map_err(|e| fail(e.to_string()))? {
        object::FileKind::Elf32 => parse_elf::<elf::FileHeader32<Endianness>>(&data, false),
        object::FileKind::Elf64 => parse_elf::<elf::FileHeader64<Endianness>>(&data, true),
        other => Err(format!("it is {other:?}")),
    }
    .map_err(fail)
}

/// Reads PT_INTERP and PT_DYNAMIC the way the loader does (through program
/// headers, so stripped section headers don't matter).
fn parse_elf<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    is_64: bool,
) -> Result<ElfInfo, String> {
    let header = H::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let mut info = ElfInfo {
        is_64,
        machine: header.e_machine(endian),
        ..ElfInfo::default()
    };
    let mut dynamic = None;
    for ph in phdrs {
        if let Some(interp) = ph.interpreter(endian, data).map_err(|e| e.to_string())? {
            info.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
        if let Some(d) = ph.dynamic(endian, data).map_err(|e| e.to_string())? {
            dynamic = Some(d);
        }
    }
    let Some(dynamic) = dynamic else {
        return Ok(info);
    };
    let mut strtab = None;
    let mut strsz = None;
    for d in dynamic {
        match d.tag32(endian) {
            Some(elf::DT_STRTAB) => strtab = Some(d.d_val(endian).into()),
            Some(elf::DT_STRSZ) => strsz = Some(d.d_val(endian).into()),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)): (Option<u64>, Option<u64>) = (strtab, strsz) else {
        return Ok(info);
    };
    // DT_STRTAB is an address: map it to a file offset through PT_LOAD.
    let strings = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| {
            let vaddr: u64 = ph.p_vaddr(endian).into();
            let filesz: u64 = ph.p_filesz(endian).into();
            let offset: u64 = ph.p_offset(endian).into();
            (strtab >= vaddr && strtab + strsz <= vaddr + filesz).then(|| {
                let start = (offset + strtab - vaddr) as usize;
                data.get(start..start + strsz as usize)
            })?
        })
        .ok_or("DT_STRTAB is outside every loadable segment")?;
    let string = |off: u64| -> Result<String, String> {
        let rest = strings
            .get(off as usize..)
            .ok_or("dynamic string offset out of range")?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let split = |s: String| s.split(':').map(str::to_owned).collect::<Vec<_>>();
    for d in dynamic {
        let val: u64 = d.d_val(endian).into();
        match d.tag32(endian) {
            Some(elf::DT_NEEDED) => info.needed.push(string(val)?),
            Some(elf::DT_SONAME) => info.soname = Some(string(val)?),
            Some(elf::DT_RPATH) => info.rpath.extend(split(string(val)?)),
            Some(elf::DT_RUNPATH) => info
                .runpath
                .get_or_insert_with(Vec::new)
                .extend(split(string(val)?)),
            _ => {}
        }
    }
    if info.runpath.is_some() {
        // ld.so ignores an object's DT_RPATH when it has a DT_RUNPATH.
        info.rpath.clear();
    }
    Ok(info)
}

/// Directories listed in an `ld.so.conf`, following `include` globs (in
/// sorted order, as ldconfig does). Unreadable files contribute nothing.
pub fn read_ld_so_conf(path: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut visited = BTreeSet::new();
    read_conf_into(path, &mut dirs, &mut visited);
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn read_conf_into(path: &Path, dirs: &mut Vec<PathBuf>, visited: &mut BTreeSet<PathBuf>) {
    if !visited.insert(path.to_owned()) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let base = path.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pattern in pattern.split_whitespace() {
                let pattern = base.join(pattern);
                for file in glob(&pattern) {
                    read_conf_into(&file, dirs, visited);
                }
            }
        } else if line.starts_with("hwcap ") {
            // Obsolete directive; ldconfig ignores it too.
        } else {
            // `dir` or the old `dir=TYPE` form; several may share a line.
            for dir in line.split([' ', '\t', ',', ':']).filter(|d| !d.is_empty()) {
                let dir = dir.split('=').next().unwrap_or(dir);
                if dir.starts_with('/') {
                    dirs.push(lexical(Path::new(dir)));
                }
            }
        }
    }
}

/// A small glob: `*` and `?` in the last path component only, which is all
/// `ld.so.conf` includes use in practice (`/etc/ld.so.conf.d/*.conf`).
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?']) {
        return vec![pattern.to_owned()];
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic backtracking match over `*` and `?`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    fn guest_paths(files: &[GuestFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.guest.display().to_string())
            .collect()
    }

    #[test]
    fn bash_needs_interpreter_libc_and_tinfo() {
        let bash = Path::new("/bin/bash");
        let files = closure(bash, Path::new("/bin/bash")).unwrap();
        let guest = guest_paths(&files);
        let interp = parse(bash).unwrap().interpreter.unwrap();
        assert_eq!(guest[0], interp, "interpreter first: {guest:?}");
        assert!(guest.iter().any(|g| g.ends_with("/libc.so.6")), "{guest:?}");
        assert!(
            guest.iter().any(|g| g.ends_with("/libtinfo.so.6")),
            "{guest:?}"
        );
        // libc.so.6 needs ld-linux-x86-64.so.2: the interpreter provides it.
        assert_eq!(
            guest.iter().filter(|g| g.contains("ld-linux")).count(),
            1,
            "{guest:?}"
        );
        for f in &files {
            assert!(f.host.is_file(), "{f:?}");
            assert!(f.guest.is_absolute(), "{f:?}");
        }
        // Same answer as the loader itself gives (for the sonames it lists).
        let ldd = Command::new(&interp)
            .arg("--list")
            .arg(bash)
            .output()
            .unwrap();
        let ldd = String::from_utf8_lossy(&ldd.stdout);
        for line in ldd.lines().filter(|l| l.contains("=>")) {
            let soname = line.split_whitespace().next().unwrap();
            assert!(
                guest.iter().any(|g| g.ends_with(&format!("/{soname}"))),
                "loader lists {soname}, closure is {guest:?}"
            );
        }
    }

    #[test]
    fn static_binary_has_empty_closure() {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("install busybox-static");
        assert!(
            parse(busybox).unwrap().interpreter.is_none(),
            "busybox is static"
        );
        assert_eq!(closure(busybox, Path::new("/bin/busybox")).unwrap(), vec![]);
    }

    #[test]
    fn scripts_have_no_closure_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("load.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(closure(&script, Path::new("/x/load.sh")).unwrap(), vec![]);
        let err = closure(&dir.path().join("nope"), Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn ld_so_conf_follows_includes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        std::fs::write(
            d.join("ld.so.conf"),
            "/opt/first # comment\ninclude conf.d/*.conf\n\n/opt/last\n",
        )
        .unwrap();
        std::fs::write(d.join("conf.d/b.conf"), "/opt/b\n/opt/first\n").unwrap();
        std::fs::write(d.join("conf.d/a.conf"), "# only\n/opt/a1 /opt/a2\n").unwrap();
        std::fs::write(d.join("conf.d/ignored.txt"), "/opt/nope\n").unwrap();
        let dirs = read_ld_so_conf(&d.join("ld.so.conf"));
        let dirs: Vec<_> = dirs.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            dirs,
            ["/opt/first", "/opt/a1", "/opt/a2", "/opt/b", "/opt/last"]
        );
        assert!(wildcard("*.conf", "x86_64-linux-gnu.conf"));
        assert!(!wildcard("*.conf", "x.conf.bak"));
        assert!(wildcard("a?c*", "abcdef"));
    }

    /// Builds a program with a private library next to it (RUNPATH
    /// `$ORIGIN/../lib`) and another found through a search dir, then checks
    /// placement and the missing-library error. Needs a C compiler.
    /// Runs the host's C compiler in `dir` and insists that it worked.
    pub(crate) fn cc(args: &[&str], dir: &Path) {
        let out = Command::new("cc")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("a C compiler (cc) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn origin_runpath_and_missing_library() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("app/bin")).unwrap();
        std::fs::create_dir_all(d.join("app/lib")).unwrap();
        std::fs::create_dir_all(d.join("extra")).unwrap();
        std::fs::write(d.join("dep.c"), "int dep(void){return 4;}\n").unwrap();
        std::fs::write(
            d.join("priv.c"),
            "int dep(void); int priv(void){return dep()+1;}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("main.c"),
            "int priv(void); int main(void){return priv();}\n",
        )
        .unwrap();
        let cc = |args: &[&str]| cc(args, d);
        cc(&[
            "-shared",
            "-fPIC",
            "-o",
            "extra/libdep.so",
            "-Wl,-soname,libdep.so",
            "dep.c",
        ]);
        cc(&[
            "-shared",
            "-fPIC",
            "-o",
            "app/lib/libpriv.so",
            "-Wl,-soname,libpriv.so",
            "priv.c",
            "-Lextra",
            "-ldep",
        ]);
        cc(&[
            "-o",
            "app/bin/main",
            "main.c",
            "-Lapp/lib",
            "-lpriv",
            "-Lextra",
            "-ldep",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
        ]);
        let main = d.join("app/bin/main");
        let search = SearchPath {
            conf_dirs: vec![d.join("extra")],
            default_dirs: DEFAULT_LIB_DIRS.iter().map(PathBuf::from).collect(),
        };
        let files = closure_with(&main, Path::new("/bpfcompat/bin/main"), &search).unwrap();
        let find = |soname: &str| files.iter().find(|f| f.host.ends_with(soname)).unwrap();
        assert_eq!(
            find("libpriv.so").guest,
            Path::new("/bpfcompat/lib/libpriv.so")
        );
        assert_eq!(find("libpriv.so").host, d.join("app/lib/libpriv.so"));
        assert_eq!(find("libdep.so").guest, d.join("extra/libdep.so"));
        assert!(files.iter().any(|f| f.guest.ends_with("libc.so.6")));

        let search = SearchPath {
            conf_dirs: vec![],
            default_dirs: DEFAULT_LIB_DIRS.iter().map(PathBuf::from).collect(),
        };
        let err = closure_with(&main, Path::new("/x/main"), &search).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("libdep.so"), "{msg}");
        assert!(
            msg.contains("libpriv.so"),
            "names the needing object: {msg}"
        );
    }
}
