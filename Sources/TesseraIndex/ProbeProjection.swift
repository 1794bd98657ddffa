import CBLAS
import Synchronization
import TesseraPlatform

/// A projection onto the top principal directions of an index's centroids, for choosing cells in fewer
/// dimensions.
///
/// The directions are the leading eigenvectors of the centroids' uncentred second moment `CᵀC`, so that
/// `(Wq)·(Wc)` is the best rank-`r` approximation of `q·c` over the centroids (a centred PCA would add a term
/// `μ·c` that differs between cells and changes their order). Centroid scoring then costs `r/dimension` of
/// the full product; the cells it picks are scored exactly afterwards.
public struct ProbeProjection: Sendable {
    /// The projected dimension.
    public let dimension: Int
    /// `[dimension, inputDimension]`, row-major, leading direction first, each of unit length.
    public let components: [Float]
    /// The centroids projected, `[centroidCount, dimension]`, row-major.
    public let centroids: [Float]
    /// The share of the centroids' squared length the kept directions hold (0–1).
    public let retainedEnergy: Double

    /// Projects rows.
    /// - Parameters:
    ///   - rows: `[rowCount, inputDimension]`, row-major.
    ///   - rowCount: The rows.
    ///   - inputDimension: Their width.
    /// - Returns: `[rowCount, dimension]`, row-major.
    public func project(_ rows: [Float], rowCount: Int, inputDimension: Int) -> [Float] {
        var output = [Float](repeating: 0, count: rowCount * dimension)
        GEMM.multiplyTransposed(
            rows,
            components,
            rows: rowCount,
            columns: dimension,
            depth: inputDimension,
            into: &output
        )
        return output
    }
}

/// The projections computed for an index, by dimension.
final class ProbeProjectionCache: Sendable {
    let projections = Mutex<[Int: ProbeProjection]>([:])
}

extension CompressedIndex {
    /// The projection of this index's centroids onto their `dimension` leading directions, computed on first
    /// use (one `dimension² × centroids` product and a symmetric eigen-decomposition, tens of milliseconds at
    /// 384 dimensions) and kept.
    /// - Parameter projected: The projected dimension, `1..<self.dimension`.
    /// - Returns: The projection, or `nil` when the dimension is out of range or the eigen-decomposition fails.
    public func probeProjection(dimension projected: Int) -> ProbeProjection? {
        guard projected >= 1, projected < dimension else { return nil }
        if let cached = probeProjections.projections.withLock({ $0[projected] }) { return cached }
        let width = dimension
        var moment = [Float](repeating: 0, count: width * width)
        GEMM.gram(centroids, rows: centroidCount, columns: width, into: &moment)
        var eigenvalues = [Float](repeating: 0, count: width)
        let status = moment.withUnsafeMutableBufferPointer { m in
            eigenvalues.withUnsafeMutableBufferPointer { e in
                tsr_symmetric_eigen(Int32(width), m.baseAddress, e.baseAddress)
            }
        }
        guard status == 0 else { return nil }
        // Eigenvalues ascend; eigenvector i is row i.
        var components = [Float](repeating: 0, count: projected * width)
        for rank in 0..<projected {
            let row = width - 1 - rank
            for component in 0..<width { components[rank * width + component] = moment[row * width + component] }
        }
        let total = eigenvalues.reduce(0.0) { $0 + Double(max(0, $1)) }
        let kept = eigenvalues.suffix(projected).reduce(0.0) { $0 + Double(max(0, $1)) }
        var projectedCentroids = [Float](repeating: 0, count: centroidCount * projected)
        GEMM.multiplyTransposed(
            centroids,
            components,
            rows: centroidCount,
            columns: projected,
            depth: width,
            into: &projectedCentroids
        )
        let projection = ProbeProjection(
            dimension: projected,
            components: components,
            centroids: projectedCentroids,
            retainedEnergy: total > 0 ? kept / total : 0
        )
        probeProjections.projections.withLock { $0[projected] = projection }
        return projection
    }
}
