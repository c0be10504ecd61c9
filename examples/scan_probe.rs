use aho_corasick::automaton::Automaton;
use aho_corasick::{Anchored, MatchKind, dfa::DFA};
use std::collections::HashMap;
use std::io::BufRead;
fn main() {
    let rules =
        hotspot::rules::load::load_file(std::path::Path::new("fixtures/rules.toml")).unwrap();
    let mut kws: Vec<String> = rules
        .templates
        .iter()
        .flat_map(|t| t.all_of.iter().flatten().chain(t.none_of.iter()).cloned())
        .collect();
    kws.sort();
    kws.dedup();
    let dfa = DFA::builder()
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build(&kws)
        .unwrap();
    let t0 = std::time::Instant::now();
    // char-level AC
    let mut sym: HashMap<char, u16> = HashMap::new();
    for k in &kws {
        for c in k.chars() {
            let n = sym.len() as u16 + 1;
            sym.entry(c).or_insert(n);
        }
    }
    let k = sym.len() + 1;
    let mut table = vec![0u16; 65536];
    for (&c, &s) in &sym {
        if (c as u32) < 65536 {
            table[c as usize] = s;
        }
    }
    // trie
    let mut children: Vec<HashMap<u16, u32>> = vec![HashMap::new()];
    let mut out: Vec<Vec<u32>> = vec![vec![]];
    for (p, kw) in kws.iter().enumerate() {
        let mut s = 0u32;
        for c in kw.chars() {
            let y = sym[&c];
            s = match children[s as usize].get(&y) {
                Some(&t) => t,
                None => {
                    children.push(HashMap::new());
                    out.push(vec![]);
                    let t = (children.len() - 1) as u32;
                    children[s as usize].insert(y, t);
                    t
                }
            };
        }
        out[s as usize].push(p as u32);
    }
    let ns = children.len();
    let mut trans = vec![0u16; ns * k];
    let mut fail = vec![0u32; ns];
    let mut q = std::collections::VecDeque::new();
    for (&y, &t) in &children[0] {
        trans[y as usize] = t as u16;
        q.push_back(t);
    }
    while let Some(s) = q.pop_front() {
        let f = fail[s as usize];
        let fo = out[f as usize].clone();
        out[s as usize].extend(fo);
        for y in 0..k {
            match children[s as usize].get(&(y as u16)) {
                Some(&t) => {
                    fail[t as usize] = trans[f as usize * k + y] as u32;
                    trans[s as usize * k + y] = t as u16;
                    q.push_back(t);
                }
                None => {
                    trans[s as usize * k + y] = trans[f as usize * k + y];
                }
            }
        }
    }
    let ism: Vec<bool> = out.iter().map(|o| !o.is_empty()).collect();
    eprintln!(
        "char AC: {} states {} syms, {} KB, build {:?}",
        ns,
        k,
        ns * k * 2 / 1024,
        t0.elapsed()
    );
    let f = std::io::BufReader::new(std::fs::File::open("/work/data/gen1m.jsonl").unwrap());
    let texts: Vec<String> = f
        .lines()
        .take(200000)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            hotspot::normalize::normalize(v["text"].as_str().unwrap_or(""))
        })
        .collect();
    let start = dfa.start_state(Anchored::No).unwrap();
    for _ in 0..4 {
        let t0 = std::time::Instant::now();
        let mut hits = 0u64;
        for t in &texts {
            let mut s = start;
            for &b in t.as_bytes() {
                s = dfa.next_state(Anchored::No, s, b);
                if dfa.is_special(s) && dfa.is_match(s) {
                    hits += 1;
                }
            }
        }
        let d1 = t0.elapsed();
        let t0 = std::time::Instant::now();
        let mut h2 = 0u64;
        for t in &texts {
            let mut s = 0usize;
            for c in t.chars() {
                let cu = c as u32;
                let y = if cu < 65536 { table[cu as usize] } else { 0 };
                s = trans[s * k + y as usize] as usize;
                if ism[s] {
                    h2 += out[s].len() as u64;
                }
            }
        }
        let d2 = t0.elapsed();
        let per = |d: std::time::Duration| d.as_nanos() as f64 / texts.len() as f64;
        eprintln!(
            "aho {:.0} ns  charAC {:.0} ns  hits {} {}",
            per(d1),
            per(d2),
            hits,
            h2
        );
    }
}
