//! A small classic-BPF assembler for seccomp filters: the few instructions a filter over
//! `seccomp_data` needs, forward jumps to named labels, and (for tests) an interpreter that
//! runs a program over a syscall the way the kernel would.
//!
//! Filters built here are short and fixed in shape, so a hand-written assembler whose output
//! is checked instruction by instruction (and run by the interpreter) is easier to review than
//! a general compiler. Everything is pure: installing a program is `sys`'s business.

use std::collections::HashMap;

// Instruction classes and fields (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_OR: u16 = 0x40;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_TAX: u16 = 0x00;

/// Size of `struct seccomp_data` on every architecture: nr, arch, instruction_pointer, `args[6]`.
pub const SECCOMP_DATA_SIZE: u32 = 64;
/// Offsets into `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;

/// Offset of the low (`hi == false`) or high 32-bit half of syscall argument `index` (x86_64 is
/// little-endian: the low half comes first).
pub const fn off_arg(index: u32, hi: bool) -> u32 {
    16 + 8 * index + if hi { 4 } else { 0 }
}

/// One instruction, laid out exactly like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Where a conditional jump goes: the next instruction, or a label defined later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Next,
    To(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    #[error("BPF label {0:?} is used but never defined")]
    UndefinedLabel(&'static str),
    #[error("BPF label {0:?} is defined twice")]
    DuplicateLabel(&'static str),
    #[error("BPF jump to {0:?} goes backwards (classic BPF jumps only forward)")]
    BackwardJump(&'static str),
    #[error("BPF jump to {label:?} spans {distance} instructions; a conditional jump reaches at most 255")]
    JumpTooFar { label: &'static str, distance: usize },
    #[error("BPF load at offset {0} is outside seccomp_data or not 4-byte aligned")]
    BadLoad(u32),
    #[error("BPF program has {0} instructions; the kernel accepts at most 4096")]
    TooLong(usize),
    #[error("BPF program does not end with a return")]
    NoFinalReturn,
}

#[derive(Debug, Clone)]
enum Pending {
    Ready(Insn),
    Jump { code: u16, k: u32, jt: Target, jf: Target },
    Always(&'static str),
}

/// Builds a program; jumps name labels and are resolved by [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    code: Vec<Pending>,
    labels: HashMap<&'static str, usize>,
    duplicate: Option<&'static str>,
    bad_load: Option<u32>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// Defines `name` as the address of the next instruction.
    pub fn label(&mut self, name: &'static str) -> &mut Self {
        if self.labels.insert(name, self.code.len()).is_some() {
            self.duplicate.get_or_insert(name);
        }
        self
    }

    /// A = the 32-bit word at `offset` in `seccomp_data`.
    pub fn load(&mut self, offset: u32) -> &mut Self {
        if !offset.is_multiple_of(4) || offset + 4 > SECCOMP_DATA_SIZE {
            self.bad_load.get_or_insert(offset);
        }
        self.ready(BPF_LD | BPF_W | BPF_ABS, offset)
    }

    /// A ^= k.
    pub fn xor(&mut self, k: u32) -> &mut Self {
        self.ready(BPF_ALU | BPF_XOR | BPF_K, k)
    }

    /// A |= X.
    pub fn or_x(&mut self) -> &mut Self {
        self.ready(BPF_ALU | BPF_OR | BPF_X, 0)
    }

    /// X = A.
    pub fn tax(&mut self) -> &mut Self {
        self.ready(BPF_MISC | BPF_TAX, 0)
    }

    /// Returns `action` (a `SECCOMP_RET_*` value with its data).
    pub fn ret(&mut self, action: u32) -> &mut Self {
        self.ready(BPF_RET | BPF_K, action)
    }

    /// if A == k goto jt else goto jf.
    pub fn jeq(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JEQ, k, jt, jf)
    }

    /// if A >= k goto jt else goto jf (unsigned).
    pub fn jge(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JGE, k, jt, jf)
    }

    /// if A & k != 0 goto jt else goto jf.
    pub fn jset(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JSET, k, jt, jf)
    }

    /// goto label (unconditionally; the offset is 32 bits wide).
    pub fn ja(&mut self, label: &'static str) -> &mut Self {
        self.code.push(Pending::Always(label));
        self
    }

    fn ready(&mut self, code: u16, k: u32) -> &mut Self {
        self.code.push(Pending::Ready(Insn { code, jt: 0, jf: 0, k }));
        self
    }

    fn jump(&mut self, op: u16, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.code.push(Pending::Jump { code: BPF_JMP | op | BPF_K, k, jt, jf });
        self
    }

    /// Resolves the labels and checks what the kernel's own checker would refuse.
    pub fn finish(&self) -> Result<Vec<Insn>, BpfError> {
        if let Some(name) = self.duplicate {
            return Err(BpfError::DuplicateLabel(name));
        }
        if let Some(offset) = self.bad_load {
            return Err(BpfError::BadLoad(offset));
        }
        if self.code.len() > 4096 {
            return Err(BpfError::TooLong(self.code.len()));
        }
        let resolve = |at: usize, target: Target, max: usize| -> Result<u32, BpfError> {
            let label = match target {
                Target::Next => return Ok(0),
                Target::To(label) => label,
            };
            let dest = *self.labels.get(label).ok_or(BpfError::UndefinedLabel(label))?;
            if dest <= at {
                return Err(BpfError::BackwardJump(label));
            }
            let distance = dest - at - 1;
            if distance > max {
                return Err(BpfError::JumpTooFar { label, distance });
            }
            Ok(distance as u32)
        };
        let mut out = Vec::with_capacity(self.code.len());
        for (at, p) in self.code.iter().enumerate() {
            out.push(match *p {
                Pending::Ready(insn) => insn,
                Pending::Jump { code, k, jt, jf } => {
                    Insn { code, jt: resolve(at, jt, 255)? as u8, jf: resolve(at, jf, 255)? as u8, k }
                }
                Pending::Always(label) => {
                    Insn { code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: resolve(at, Target::To(label), u32::MAX as usize)? }
                }
            });
        }
        if out.last().is_none_or(|i| i.code != BPF_RET | BPF_K) {
            return Err(BpfError::NoFinalReturn);
        }
        Ok(out)
    }
}

/// The input of a seccomp filter, as the kernel fills it in for one syscall.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, offset: u32) -> Option<u32> {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        Some(match offset {
            0 => self.nr,
            4 => self.arch,
            8 => lo(self.instruction_pointer),
            12 => hi(self.instruction_pointer),
            16..=60 if offset.is_multiple_of(4) => {
                let arg = self.args[((offset - 16) / 8) as usize];
                if (offset - 16).is_multiple_of(8) { lo(arg) } else { hi(arg) }
            }
            _ => return None,
        })
    }
}

/// Runs `prog` over `data` like the kernel does and returns the action, plus the number of
/// instructions executed (tests use it to show a path does not depend on secret values).
/// Only the instructions [`Asm`] emits are understood.
pub fn run(prog: &[Insn], data: &SeccompData) -> Result<(u32, usize), String> {
    let (mut a, mut x, mut pc, mut steps) = (0u32, 0u32, 0usize, 0usize);
    loop {
        let insn = prog.get(pc).ok_or_else(|| format!("fell off the program at {pc}"))?;
        steps += 1;
        pc += 1;
        match insn.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                a = data.word(insn.k).ok_or_else(|| format!("bad load offset {}", insn.k))?;
            }
            c if c == BPF_ALU | BPF_XOR | BPF_K => a ^= insn.k,
            c if c == BPF_ALU | BPF_OR | BPF_X => a |= x,
            c if c == BPF_MISC | BPF_TAX => x = a,
            c if c == BPF_RET | BPF_K => return Ok((insn.k, steps)),
            c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
            c if c & 0x07 == BPF_JMP => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == insn.k,
                    BPF_JGE => a >= insn.k,
                    BPF_JSET => a & insn.k != 0,
                    other => return Err(format!("unsupported jump {other:#x}")),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            other => return Err(format!("unsupported instruction {other:#x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_to_forward_offsets() {
        let mut asm = Asm::new();
        asm.load(OFF_NR).jeq(7, Target::To("hit"), Target::Next).ret(1).label("hit").ret(2);
        let prog = asm.finish().unwrap();
        assert_eq!(prog[1], Insn { code: 0x15, jt: 1, jf: 0, k: 7 });
        let data = |nr| SeccompData { nr, ..Default::default() };
        assert_eq!(run(&prog, &data(7)).unwrap().0, 2);
        assert_eq!(run(&prog, &data(8)).unwrap().0, 1);
    }

    #[test]
    fn arguments_are_read_in_halves() {
        // if (arg2 >> 32) == 0x12345678 && (arg2 as u32) ^ 0xdeadbeef == 0 { 1 } else { 0 },
        // folded the way the exec pin check folds: hi ^ k1 | lo ^ k2 == 0.
        let mut asm = Asm::new();
        asm.load(off_arg(2, true)).xor(0x1234_5678).tax().load(off_arg(2, false)).xor(0xdead_beef).or_x();
        asm.jeq(0, Target::To("yes"), Target::Next).ret(0).label("yes").ret(1);
        let prog = asm.finish().unwrap();
        assert_eq!(prog[0].k, 16 + 2 * 8 + 4);
        assert_eq!(prog[3].k, 16 + 2 * 8);
        let mut d = SeccompData::default();
        d.args[2] = 0x1234_5678_dead_beef;
        assert_eq!(run(&prog, &d).unwrap().0, 1);
        for flip in [1u64, 1 << 31, 1 << 32, 1 << 63] {
            d.args[2] = 0x1234_5678_dead_beef ^ flip;
            assert_eq!(run(&prog, &d).unwrap().0, 0, "{flip:#x}");
        }
    }

    #[test]
    fn mistakes_are_refused() {
        let mut asm = Asm::new();
        asm.jeq(1, Target::To("nowhere"), Target::Next).ret(0);
        assert_eq!(asm.finish(), Err(BpfError::UndefinedLabel("nowhere")));

        let mut asm = Asm::new();
        asm.label("top").ret(0).label("top").ret(1);
        assert_eq!(asm.finish(), Err(BpfError::DuplicateLabel("top")));

        let mut asm = Asm::new();
        asm.label("top").load(0).jeq(1, Target::To("top"), Target::Next).ret(0);
        assert_eq!(asm.finish(), Err(BpfError::BackwardJump("top")));

        let mut asm = Asm::new();
        asm.jeq(1, Target::To("far"), Target::Next);
        for _ in 0..300 {
            asm.ret(0);
        }
        asm.label("far").ret(1);
        assert!(matches!(asm.finish(), Err(BpfError::JumpTooFar { label: "far", distance: 300 })));
        // An unconditional jump has a 32-bit offset.
        let mut asm = Asm::new();
        asm.ja("far");
        for _ in 0..300 {
            asm.ret(0);
        }
        asm.label("far").ret(1);
        assert_eq!(run(&asm.finish().unwrap(), &SeccompData::default()).unwrap().0, 1);

        let mut asm = Asm::new();
        asm.load(62).ret(0);
        assert_eq!(asm.finish(), Err(BpfError::BadLoad(62)));
        let mut asm = Asm::new();
        asm.load(64).ret(0);
        assert_eq!(asm.finish(), Err(BpfError::BadLoad(64)));

        let mut asm = Asm::new();
        asm.load(0);
        assert_eq!(asm.finish(), Err(BpfError::NoFinalReturn));
    }
}
