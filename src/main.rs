mod kernel;

fn main() {}
