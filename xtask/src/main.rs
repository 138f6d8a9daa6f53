fn main() {
    eprintln!("xtask: under construction");
}
