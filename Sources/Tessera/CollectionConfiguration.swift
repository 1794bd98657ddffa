public import TesseraEncoder

/// How a vector field's values are stored on disk and in the in-memory scoring columns.
///
/// Error bounds, per element, against the `Float` value given to ``CollectionStore/upsert(_:)``:
/// - ``float32``: exact.
/// - ``float16``: round to nearest even, relative error at most 2⁻¹¹ (≈ 4.9 × 10⁻⁴) for magnitudes in
///   [6.1 × 10⁻⁵, 65504]; smaller magnitudes have absolute error at most 2⁻²⁵. Magnitudes above 65504 are rejected.
/// - ``int8``: symmetric per-token quantisation. Each token (row) stores `scale = maxabs / 127` as a `Float`
///   and `q = round(value / scale)` in `[-127, 127]`; the value read back is `scale × q`, within `scale / 2`
///   (= `maxabs / 254`) of the original. An all-zero token has scale 0.
public struct ElementType: Hashable, Sendable, Codable, CustomStringConvertible {
    private enum Kind: String, Hashable, Sendable, Codable {
        case float32
        case float16
        case int8
    }
    private let kind: Kind

    /// 32-bit IEEE floats, 4 bytes per element.
    public static let float32 = ElementType(kind: .float32)
    /// 16-bit IEEE floats, 2 bytes per element.
    public static let float16 = ElementType(kind: .float16)
    /// Signed bytes with one `Float` scale per token: 1 byte per element plus 4 bytes per token.
    public static let int8 = ElementType(kind: .int8)

    /// The name used in the stored configuration: `float32`, `float16` or `int8`.
    public var description: String { kind.rawValue }

    var isFloat32: Bool { kind == .float32 }
    var isFloat16: Bool { kind == .float16 }
    var isInt8: Bool { kind == .int8 }
    /// Bytes per stored element (not counting int8's per-token scale).
    var byteCount: Int { isFloat32 ? 4 : isFloat16 ? 2 : 1 }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let kind = Kind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "unknown element type '\(name)' (expected float32, float16 or int8)"
            )
        }
        self.kind = kind
    }

    private init(kind: Kind) { self.kind = kind }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(kind.rawValue)
    }
}

/// The distance of a dense vector field, with Qdrant's names.
public enum Distance: String, Hashable, Sendable, Codable {
    /// Cosine similarity (vectors are compared after L2 normalisation).
    case cosine = "Cosine"
    /// Dot product.
    case dot = "Dot"
    /// Euclidean distance.
    case euclid = "Euclid"
}

/// How the token vectors of a multivector field are compared, with Qdrant's names.
public enum MultivectorComparator: String, Hashable, Sendable, Codable {
    /// Late interaction: for each query token, the maximum similarity over the document's tokens, summed.
    case maxSim = "max_sim"
}

/// Whether a field holds one vector per point or a matrix of token vectors.
public enum VectorKind: Hashable, Sendable, Codable {
    /// A matrix `[tokenCount, dimension]` per point, scored with the comparator.
    case multivector(comparator: MultivectorComparator)
    /// One vector `[dimension]` per point, scored with the distance.
    case dense(distance: Distance)
    /// A ``SparseVector`` per point (possibly empty), scored by dot product, its query weighted by the modifier.
    case sparse(modifier: SparseModifier)
}

/// The encoding profile that produced a field's vectors; see DESIGN.md, "Encoding profiles".
public enum EncodingProfile: String, Hashable, Sendable, Codable {
    /// `[CLS] text [SEP]`, every token kept, L2-normalised.
    case plain
    /// ColBERT markers, query padding, punctuation dropped, checkpoint projection, L2-normalised.
    case colbert
}

/// The model that produced a field's vectors. A collection refuses to open with a different encoder.
public struct EncoderIdentity: Hashable, Sendable, Codable {
    /// The model's name, for example `sentence-transformers/all-MiniLM-L6-v2`.
    public var modelName: String
    /// A hash of the model's weights and tokenizer files (any stable text, for example a SHA-256 in hex).
    public var contentHash: String
    /// The encoding profile.
    public var profile: EncodingProfile
    /// The arithmetic the field was encoded with; its text is encoded with the same unless the caller asks for
    /// another. Identities recorded before precisions existed read as ``EncoderPrecision/float32``.
    public var precision: EncoderPrecision

    /// Creates an encoder identity.
    /// - Parameters:
    ///   - modelName: The model's name.
    ///   - contentHash: A hash of the model's files.
    ///   - profile: The encoding profile.
    ///   - precision: The encoder's arithmetic.
    public init(
        modelName: String,
        contentHash: String,
        profile: EncodingProfile,
        precision: EncoderPrecision = .float32
    ) {
        self.modelName = modelName
        self.contentHash = contentHash
        self.profile = profile
        self.precision = precision
    }

    private enum CodingKeys: String, CodingKey {
        case modelName, contentHash, profile, precision
    }

    /// Decodes an identity; a missing `precision` is float32.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        modelName = try container.decode(String.self, forKey: .modelName)
        contentHash = try container.decode(String.self, forKey: .contentHash)
        profile = try container.decode(EncodingProfile.self, forKey: .profile)
        precision = try container.decodeIfPresent(EncoderPrecision.self, forKey: .precision) ?? .float32
    }
}

/// One named vector field of a collection.
public struct VectorField: Hashable, Sendable, Codable {
    /// The field's name, unique in the collection (Qdrant's named vector).
    public var name: String
    /// The number of components of each vector (each token vector, for a multivector field).
    public var dimension: Int
    /// Multivector or dense, with its comparator or distance.
    public var kind: VectorKind
    /// How values are stored.
    public var elementType: ElementType
    /// The encoder that produces this field's vectors, when Tessera encodes text for it.
    public var encoder: EncoderIdentity?
    /// For a multivector field, how its token vectors compare (Qdrant's `distance` on a multivector): `cosine`
    /// stores unit token vectors and normalises query tokens, so that MaxSim sums cosines; `dot` or `nil`
    /// compares them as given. Ignored for dense fields, whose distance is in ``kind``.
    public var multivectorDistance: Distance?
    /// Qdrant's `hnsw_config.m` as the collection was created with it (`0`: no graph for this field), when given.
    public var hnswM: Int?

    /// Creates a field description.
    /// - Parameters:
    ///   - name: The field's name.
    ///   - dimension: Components per vector, 1 or more.
    ///   - kind: Multivector or dense.
    ///   - elementType: How values are stored.
    ///   - encoder: The encoder that produces the vectors, if any.
    ///   - multivectorDistance: For a multivector field, `cosine` to compare unit token vectors.
    ///   - hnswM: Qdrant's `hnsw_config.m`, when given.
    public init(
        name: String,
        dimension: Int,
        kind: VectorKind,
        elementType: ElementType = .float32,
        encoder: EncoderIdentity? = nil,
        multivectorDistance: Distance? = nil,
        hnswM: Int? = nil
    ) {
        self.name = name
        self.dimension = dimension
        self.kind = kind
        self.elementType = elementType
        self.encoder = encoder
        self.multivectorDistance = multivectorDistance
        self.hnswM = hnswM
    }

    /// Whether the field holds a multivector (token vectors) per point.
    public var isMultivector: Bool {
        if case .multivector = kind { return true }
        return false
    }

    /// Whether the field holds a sparse vector per point.
    public var isSparse: Bool {
        if case .sparse = kind { return true }
        return false
    }

    /// Whether the field holds one dense vector per point.
    public var isDense: Bool {
        if case .dense = kind { return true }
        return false
    }

    /// A stored value of the field from its row-major stored values: token rows, one dense vector, or a sparse
    /// vector.
    func value(stored values: [Float]) -> VectorValue {
        switch kind {
        case .multivector:
            .multivector((0..<(values.count / dimension)).map { Array(values[$0 * dimension..<($0 + 1) * dimension]) })
        case .dense: .dense(values)
        case .sparse: .sparse(SparseVector(packed: values))
        }
    }

    /// A sparse field (stored as rows of ``SparseVector/rowWidth`` `float32` values).
    public static func sparse(name: String, modifier: SparseModifier = .none) -> VectorField {
        VectorField(name: name, dimension: SparseVector.rowWidth, kind: .sparse(modifier: modifier))
    }

    /// Whether stored vectors (each token's, for a multivector field) are unit vectors: cosine fields.
    var storesUnitVectors: Bool {
        switch kind {
        case .dense(let distance): distance == .cosine
        case .multivector: multivectorDistance == .cosine
        case .sparse: false
        }
    }
}

/// A collection's configuration: its vector fields. Stored in the collection's database as JSON and compared
/// with the caller's expectation when the collection is opened.
public struct CollectionConfiguration: Hashable, Sendable, Codable {
    /// The vector fields, in a fixed order. Every point has a vector for every field.
    public var fields: [VectorField]
    /// The collection was created with Qdrant's single unnamed vector (`"vectors": {"size": …}`): its one field
    /// is written bare in Qdrant's answers.
    public var unnamedVector: Bool?

    /// Creates a configuration.
    /// - Parameters:
    ///   - fields: The vector fields; names must be unique and dimensions positive.
    ///   - unnamedVector: Whether the one field is Qdrant's unnamed vector.
    public init(fields: [VectorField], unnamedVector: Bool? = nil) {
        self.fields = fields
        self.unnamedVector = unnamedVector
    }

    /// The field with this name, if any.
    public func field(named name: String) -> VectorField? {
        fields.first { $0.name == name }
    }

    /// Checks names and dimensions.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for no fields, duplicate or empty names, or a dimension
    ///   below 1.
    func validate() throws(TesseraError) {
        if fields.isEmpty {
            throw TesseraError(.invalidArgument, "a collection needs at least one vector field")
        }
        var seen: Set<String> = []
        for field in fields {
            if field.name.isEmpty {
                throw TesseraError(.invalidArgument, "vector field names must not be empty")
            }
            if !seen.insert(field.name).inserted {
                throw TesseraError(
                    .invalidArgument,
                    "vector field '\(field.name)' is declared twice",
                    location: .init(field: field.name)
                )
            }
            if field.dimension < 1 || field.dimension > 65536 {
                throw TesseraError(
                    .invalidArgument,
                    "vector field '\(field.name)' has dimension \(field.dimension); expected 1...65536",
                    location: .init(field: field.name)
                )
            }
        }
    }

    /// Describes the first difference between a stored configuration and an expected one.
    /// - Parameters:
    ///   - expected: The configuration the caller expects.
    ///   - path: The collection directory, for the error's location.
    /// - Returns: The error to throw, or `nil` when both are equal.
    func mismatch(expected: CollectionConfiguration, path: String) -> TesseraError? {
        func error(_ field: String, stored: String, expectedValue: String) -> TesseraError {
            TesseraError(
                .configurationMismatch,
                "\(field) differs: the collection stores \(stored), the caller expects \(expectedValue)",
                location: .init(path: path, field: field)
            )
        }
        let storedNames = fields.map(\.name)
        let expectedNames = expected.fields.map(\.name)
        if storedNames != expectedNames {
            return error("fields", stored: "\(storedNames)", expectedValue: "\(expectedNames)")
        }
        for (stored, wanted) in zip(fields, expected.fields) {
            let prefix = "fields[\(stored.name)]"
            if stored.dimension != wanted.dimension {
                return error("\(prefix).dimension", stored: "\(stored.dimension)", expectedValue: "\(wanted.dimension)")
            }
            if stored.kind != wanted.kind {
                return error("\(prefix).kind", stored: "\(stored.kind)", expectedValue: "\(wanted.kind)")
            }
            if stored.elementType != wanted.elementType {
                return error(
                    "\(prefix).elementType",
                    stored: "\(stored.elementType)",
                    expectedValue: "\(wanted.elementType)"
                )
            }
            switch (stored.encoder, wanted.encoder) {
            case (nil, nil):
                break
            case (let s?, let w?):
                if s.modelName != w.modelName {
                    return error(
                        "\(prefix).encoder.modelName",
                        stored: "'\(s.modelName)'",
                        expectedValue: "'\(w.modelName)'"
                    )
                }
                if s.contentHash != w.contentHash {
                    return error(
                        "\(prefix).encoder.contentHash",
                        stored: "'\(s.contentHash)'",
                        expectedValue: "'\(w.contentHash)'"
                    )
                }
                if s.profile != w.profile {
                    return error(
                        "\(prefix).encoder.profile",
                        stored: "'\(s.profile.rawValue)'",
                        expectedValue: "'\(w.profile.rawValue)'"
                    )
                }
            case (let s, let w):
                return error(
                    "\(prefix).encoder",
                    stored: s.map { "'\($0.modelName)'" } ?? "none",
                    expectedValue: w.map { "'\($0.modelName)'" } ?? "none"
                )
            }
        }
        return nil
    }
}
