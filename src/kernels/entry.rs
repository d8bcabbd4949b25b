//! One operation's kernel on one target, and the kernels it hands the
//! group sizes it does not serve to: the cells of `kernels::table`.

/// One operation's kernel on one target.
pub(crate) struct Entry<F: 'static> {
    /// The group sizes `run` handles.
    serves: fn(usize) -> bool,
    run: F,
    /// Where the other group sizes go; `None` only for references, which
    /// serve every group size.
    otherwise: Option<&'static Entry<F>>,
}

impl<F: Copy> Entry<F> {
    /// A scalar reference: every group size.
    pub(crate) const fn reference(run: F) -> Self {
        Entry {
            serves: any_group_size,
            run,
            otherwise: None,
        }
    }

    /// A SIMD kernel for the group sizes `serves` accepts, `otherwise` for
    /// the rest.
    pub(crate) const fn simd(
        serves: fn(usize) -> bool,
        run: F,
        otherwise: &'static Entry<F>,
    ) -> Self {
        Entry {
            serves,
            run,
            otherwise: Some(otherwise),
        }
    }

    /// The kernel that serves `group_size`.
    pub(crate) fn pick(&self, group_size: usize) -> F {
        let mut entry = self;
        while !(entry.serves)(group_size) {
            match entry.otherwise {
                Some(next) => entry = next,
                None => break,
            }
        }
        entry.run
    }
}

/// Every group size: for kernels that do not depend on it.
pub(crate) fn any_group_size(_: usize) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pack::multiple_of;

    #[test]
    fn pick_follows_the_chain_to_the_first_entry_that_serves() {
        static REFERENCE: Entry<u8> = Entry::reference(3);
        static EIGHT: Entry<u8> = Entry::simd(multiple_of::<8>, 2, &REFERENCE);
        static SIXTEEN: Entry<u8> = Entry::simd(multiple_of::<16>, 1, &EIGHT);
        let picks: Vec<u8> = [32, 16, 24, 8, 7, 1].map(|g| SIXTEEN.pick(g)).to_vec();
        assert_eq!(picks, [1, 1, 2, 2, 3, 3]);
        assert_eq!(EIGHT.pick(48), 2);
        assert_eq!(REFERENCE.pick(5), 3);
    }
}
