/// An error from loading a model folder, tokenizing text or running the encoder.
///
/// Every error names what went wrong (``code``), says it in words (``message``) and, where it
/// applies, where: the file, the tensor or JSON field, and the byte offset.
public struct EncoderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. New kinds can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case missingFile
            case malformedFile
            case missingTensor
            case tensorShape
            case unsupportedDataType
            case unsupportedConfiguration
            case invalidText
            case invalidArgument
        }
        private let kind: Kind

        /// A file the model folder needs is not there.
        public static let missingFile = Code(kind: .missingFile)
        /// A file is there but cannot be parsed (bad JSON, a truncated safetensors header, …).
        public static let malformedFile = Code(kind: .malformedFile)
        /// A tensor the model needs is absent from its checkpoint.
        public static let missingTensor = Code(kind: .missingTensor)
        /// A tensor has a shape other than the configuration implies.
        public static let tensorShape = Code(kind: .tensorShape)
        /// A tensor's element type is not one Tessera reads.
        public static let unsupportedDataType = Code(kind: .unsupportedDataType)
        /// The configuration asks for something Tessera does not implement (an activation, a model type).
        public static let unsupportedConfiguration = Code(kind: .unsupportedConfiguration)
        /// The text cannot be encoded (not valid UTF-8, or empty).
        public static let invalidText = Code(kind: .invalidText)
        /// An argument is out of its allowed range.
        public static let invalidArgument = Code(kind: .invalidArgument)

        public var description: String { String(describing: kind) }
    }

    /// Where the problem is.
    public struct Location: Hashable, Sendable {
        /// The file, when the problem is in one.
        public var path: String?
        /// The JSON field, tensor name or argument.
        public var field: String?
        /// A byte offset into the file, or an index into a batch.
        public var offset: Int?

        public init(path: String? = nil, field: String? = nil, offset: Int? = nil) {
            self.path = path
            self.field = field
            self.offset = offset
        }
    }

    public var code: Code
    public var message: String
    public var location: Location

    public init(_ code: Code, _ message: String, location: Location = Location()) {
        self.code = code
        self.message = message
        self.location = location
    }

    public var description: String {
        var parts: [String] = []
        if let path = location.path { parts.append(path) }
        if let field = location.field { parts.append("field '\(field)'") }
        if let offset = location.offset { parts.append("offset \(offset)") }
        let place = parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
        return "\(code): \(message)\(place)"
    }
}
