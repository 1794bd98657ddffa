internal import CMaxSimKernels

/// The instruction-set variants of the kernels. All give bit-identical results; they differ only in speed.
public enum InstructionSet: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Portable C: one fused multiply-add at a time.
    case scalar
    /// x86-64 AVX2 + FMA + F16C: 6 × 16 register tiles.
    case avx2
    /// x86-64 AVX-512F/BW: 12 × 32 register tiles.
    case avx512
    /// AArch64 NEON: 6 × 16 register tiles.
    case neon

    /// Whether this CPU can run the variant.
    public var isSupported: Bool { tsr_isa_supported(code) != 0 }

    /// The fastest variant this CPU supports.
    public static var best: InstructionSet {
        switch tsr_isa_best() {
        case Int32(TSR_ISA_AVX512): .avx512
        case Int32(TSR_ISA_AVX2): .avx2
        case Int32(TSR_ISA_NEON): .neon
        default: .scalar
        }
    }

    /// The variants this CPU supports.
    public static var supported: [InstructionSet] { allCases.filter(\.isSupported) }

    var code: Int32 {
        switch self {
        case .scalar: Int32(TSR_ISA_SCALAR)
        case .avx2: Int32(TSR_ISA_AVX2)
        case .avx512: Int32(TSR_ISA_AVX512)
        case .neon: Int32(TSR_ISA_NEON)
        }
    }

    public var description: String { rawValue }
}
