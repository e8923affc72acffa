use rvmx_pure::vmcs::field::{Access, BadEncoding, Field, Kind, Width};

// Encodings from SDM Vol. 3D Appendix B.
#[test]
fn decodes_known_fields() {
    let cases: &[(u32, Width, Kind, Access, u32)] = &[
        (0x0000_0000, Width::W16, Kind::Control, Access::Full, 0), // VPID
        (0x0000_0800, Width::W16, Kind::Guest, Access::Full, 0),   // GUEST_ES_SELECTOR
        (0x0000_0c02, Width::W16, Kind::Host, Access::Full, 1),    // HOST_CS_SELECTOR
        (0x0000_201a, Width::W64, Kind::Control, Access::Full, 13), // EPT_POINTER
        (0x0000_201b, Width::W64, Kind::Control, Access::High, 13), // EPT_POINTER_HIGH
        (0x0000_2400, Width::W64, Kind::ExitInfo, Access::Full, 0), // GUEST_PHYSICAL_ADDRESS
        (0x0000_2800, Width::W64, Kind::Guest, Access::Full, 0),   // VMCS_LINK_POINTER
        (0x0000_4002, Width::W32, Kind::Control, Access::Full, 1), // CPU_BASED_VM_EXEC_CONTROL
        (0x0000_4402, Width::W32, Kind::ExitInfo, Access::Full, 1), // VM_EXIT_REASON
        (0x0000_4826, Width::W32, Kind::Guest, Access::Full, 19),  // GUEST_ACTIVITY_STATE
        (0x0000_4c00, Width::W32, Kind::Host, Access::Full, 0),    // HOST_IA32_SYSENTER_CS
        (0x0000_6400, Width::Natural, Kind::ExitInfo, Access::Full, 0), // EXIT_QUALIFICATION
        (0x0000_681e, Width::Natural, Kind::Guest, Access::Full, 15), // GUEST_RIP
        (0x0000_6c16, Width::Natural, Kind::Host, Access::Full, 11), // HOST_RIP
    ];
    for &(enc, w, k, a, i) in cases {
        let f = Field::from_raw(enc).unwrap_or_else(|e| panic!("{enc:#x}: {e:?}"));
        assert_eq!((f.width(), f.kind(), f.access()), (w, k, a), "{enc:#x}");
        // The index (bits 9:1) is where `new` puts it.
        assert_eq!(Field::new(w, k, i).raw(), enc & !1, "{enc:#x}");
        assert_eq!(f.raw(), enc);
    }
}

#[test]
fn new_round_trips_through_from_raw() {
    for w in [Width::W16, Width::W64, Width::W32, Width::Natural] {
        for k in [Kind::Control, Kind::ExitInfo, Kind::Guest, Kind::Host] {
            for i in [0, 1, 17, 255, 511] {
                let f = Field::new(w, k, i);
                assert_eq!(Field::from_raw(f.raw()), Ok(f));
                assert_eq!((f.width(), f.kind(), f.access()), (w, k, Access::Full));
                assert_eq!((f.raw() >> 1) & 0x1ff, i);
            }
        }
    }
    assert_eq!(Field::new(Width::Natural, Kind::Host, 11).raw(), 0x6c16); // HOST_RIP
}

#[test]
fn rejects_reserved_bits() {
    assert_eq!(Field::from_raw(0x1000), Err(BadEncoding::ReservedBits)); // bit 12
    assert_eq!(Field::from_raw(0x8000), Err(BadEncoding::ReservedBits)); // bit 15
    assert_eq!(Field::from_raw(0x8000_0000), Err(BadEncoding::ReservedBits));
    assert_eq!(Field::from_raw(0x6c16 | (1 << 20)), Err(BadEncoding::ReservedBits));
}

#[test]
fn high_access_only_on_64_bit_fields() {
    assert_eq!(Field::from_raw(0x4403), Err(BadEncoding::HighOnNon64)); // 32-bit
    assert_eq!(Field::from_raw(0x0801), Err(BadEncoding::HighOnNon64)); // 16-bit
    assert_eq!(Field::from_raw(0x681f), Err(BadEncoding::HighOnNon64)); // natural
    assert_eq!(Field::from_raw(0x201b).map(|f| f.access()), Ok(Access::High)); // EPT_POINTER_HIGH
}

#[test]
fn bits_and_read_only() {
    assert_eq!(Field::from_raw(0x0800).unwrap().bits(), 16);
    assert_eq!(Field::from_raw(0x4402).unwrap().bits(), 32);
    assert_eq!(Field::from_raw(0x201a).unwrap().bits(), 64);
    assert_eq!(Field::from_raw(0x201b).unwrap().bits(), 32);
    assert_eq!(Field::from_raw(0x681e).unwrap().bits(), 64);
    assert!(Field::from_raw(0x4402).unwrap().is_read_only()); // exit reason
    assert!(Field::from_raw(0x6400).unwrap().is_read_only()); // exit qualification
    assert!(!Field::from_raw(0x681e).unwrap().is_read_only()); // guest RIP
}

#[test]
fn named_fields_have_the_right_shape() {
    use rvmx_pure::vmcs::field as v;
    let shape = |f: Field| (f.width(), f.kind());
    assert_eq!(shape(v::HOST_RSP.field()), (Width::Natural, Kind::Host));
    assert_eq!(shape(v::EPT_POINTER.field()), (Width::W64, Kind::Control));
    assert_eq!(shape(v::VPID.field()), (Width::W16, Kind::Control));
    assert!(v::EXIT_REASON.field().is_read_only() && v::EXIT_QUALIFICATION.field().is_read_only());
    assert!(!v::GUEST_RIP.field().is_read_only());
    assert_eq!(v::HOST_RSP.field().raw(), 0x6c14);
}

/// The segment table gives the SDM's encodings (Vol. 3D Appendix B).
#[test]
fn segment_fields_match_the_sdm() {
    use rvmx_pure::vmcs::field::Seg;
    let enc = |s: Seg| {
        let f = s.fields();
        [f.selector.field().raw(), f.base.field().raw(), f.limit.field().raw(), f.ar.field().raw()]
    };
    assert_eq!(enc(Seg::Es), [0x0800, 0x6806, 0x4800, 0x4814]);
    assert_eq!(enc(Seg::Cs), [0x0802, 0x6808, 0x4802, 0x4816]);
    assert_eq!(enc(Seg::Ss), [0x0804, 0x680a, 0x4804, 0x4818]);
    assert_eq!(enc(Seg::Ds), [0x0806, 0x680c, 0x4806, 0x481a]);
    assert_eq!(enc(Seg::Fs), [0x0808, 0x680e, 0x4808, 0x481c]);
    assert_eq!(enc(Seg::Gs), [0x080a, 0x6810, 0x480a, 0x481e]);
    assert_eq!(enc(Seg::Ldtr), [0x080c, 0x6812, 0x480c, 0x4820]);
    assert_eq!(enc(Seg::Tr), [0x080e, 0x6814, 0x480e, 0x4822]);
    assert_eq!(Seg::ALL.len(), 8);
}
