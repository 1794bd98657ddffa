/// An invalid argument given to a MaxSim entry point.
///
/// Every error names the argument (``argument``) and, where the problem is one element of it, the index
/// (``index``), so that a caller can point at the exact offset, length or pair that is wrong.
public struct MaxSimError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is. New kinds can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case dimensionMismatch
            case invalidOffsets
            case invalidLength
            case indexOutOfRange
            case invalidCount
            case invalidShape
        }
        private let kind: Kind

        /// Two inputs disagree on the token dimension, or a flat array is not a whole number of rows.
        public static let dimensionMismatch = Code(kind: .dimensionMismatch)
        /// Offsets that do not start at 0, decrease, or end elsewhere than the token count.
        public static let invalidOffsets = Code(kind: .invalidOffsets)
        /// A length that is negative or larger than the padding.
        public static let invalidLength = Code(kind: .invalidLength)
        /// A pair or candidate that refers to a query or document that does not exist.
        public static let indexOutOfRange = Code(kind: .indexOutOfRange)
        /// A count such as `k` or a thread count that is out of range.
        public static let invalidCount = Code(kind: .invalidCount)
        /// Arrays whose sizes do not match the shape they claim.
        public static let invalidShape = Code(kind: .invalidShape)

        public var description: String { String(describing: kind) }
    }

    /// The kind of problem.
    public var code: Code
    /// What is wrong, in words.
    public var message: String
    /// The argument at fault, e.g. `documents.offsets` or `pairs`.
    public var argument: String
    /// The index within the argument, when one element is at fault.
    public var index: Int?

    /// Creates an error.
    /// - Parameters:
    ///   - code: the kind of problem.
    ///   - argument: the argument at fault.
    ///   - index: the index within the argument, if one element is at fault.
    ///   - message: what is wrong.
    public init(_ code: Code, argument: String, index: Int? = nil, _ message: String) {
        self.code = code
        self.argument = argument
        self.index = index
        self.message = message
    }

    public var description: String {
        let place = index.map { "\(argument)[\($0)]" } ?? argument
        return "\(code) in \(place): \(message)"
    }
}
