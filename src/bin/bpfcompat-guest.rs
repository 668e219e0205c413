//! The guest agent binary: `/init` inside every guest (see validator/).
fn main() {
    bpfcompat_guest::main()
}
