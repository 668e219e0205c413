mod object;

fn main() {}
