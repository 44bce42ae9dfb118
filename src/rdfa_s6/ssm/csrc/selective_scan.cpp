// rdfa-s6 native selective scan for CPUs: forward and hand-written backward.
//
// Semantics (real A), per batch b, channel d, state n, step t:
//   dt_t  = softplus(delta_t + bias)            (bias, softplus optional)
//   h_t   = exp(dt_t * A[d,n]) * h_{t-1} + dt_t * u_t * B[b,n,t]        h_{-1} = 0
//   y_t   = sum_n h_t * C[b,n,t] + D[d] * u_t
//   out_t = y_t * silu(z_t)                     (gate optional)
//
// Layout: the vector lanes run over channels d (W = one register of T: 64 bytes with AVX-512, else 32). u, delta, z,
// out and the per-element gradients take any batch/time/channel strides: stride 1 along d loads a vector at
// once ([b, d, l] views of [b, l, d] tensors, what a Linear produces), any other channel stride (contiguous
// [b, d, l], mamba_ssm's layout) gathers the W lanes from W rows that are each read sequentially in time.
// Optional per-batch offsets and time strides (negative for a reversed stream) let one call read and write
// several streams of other tensors in place (the Bi-S6 mixer's two directions, see fused.py).
// B and C take any strides. Each work item is one batch index and one group of W channels; its state
// h[n][W] lives in a small buffer and the time axis is walked sequentially. The forward stores the state
// at the start of every `chunk` steps; the backward recomputes one chunk's states from that checkpoint and
// runs the adjoint recurrence over it in reverse, chunk by chunk. dB and dC (sums over d) accumulate in
// per-thread buffers that the caller adds up.
//
// Built by rdfa_s6/ssm/native.py with g++ -O3 -march=native -fopenmp; no PyTorch headers needed.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <omp.h>

namespace {

// One register: 64 bytes with AVX-512, 32 with AVX2 (16 ymm registers: a 64-byte type there would keep
// the 16-vector state of a chain in 32 registers and spill: the scan ran 3.7x its exp floor instead of 1.1x).
#if defined(__AVX512F__)
#define RDFA_VBYTES 64
#else
#define RDFA_VBYTES 32
#endif
template <typename T> struct Vec;
template <> struct Vec<float> {
    typedef float type __attribute__((vector_size(RDFA_VBYTES)));
    typedef int32_t itype __attribute__((vector_size(RDFA_VBYTES)));
    static constexpr int W = RDFA_VBYTES / 4;
};
template <> struct Vec<double> {
    typedef double type __attribute__((vector_size(RDFA_VBYTES)));
    typedef int64_t itype __attribute__((vector_size(RDFA_VBYTES)));
    static constexpr int W = RDFA_VBYTES / 8;
};

// ---- vector math -------------------------------------------------------------------------------------
// float: Cephes-style exp/log (about 1 ulp) written on GCC vector types so they inline into the scan loop.
typedef Vec<float>::type vf;
typedef Vec<float>::itype vi;

inline vf vexp(vf x) {
    const vf lo = x < -87.33654f ? vf{} + 1.0f : vf{};  // mask of lanes that underflow to 0
    x = x > 88.3762626647949f ? vf{} + 88.3762626647949f : x;
    x = x < -87.33654f ? vf{} - 87.33654f : x;
    const float magic = 12582912.0f;                     // 1.5 * 2^23: adding it rounds to nearest
    vf fx = (x * 1.44269504088896341f + magic) - magic;
    vf r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
    vf p = vf{} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    vi e = __builtin_convertvector(fx, vi) + 127;
    e = e << 23;
    vf scale;
    std::memcpy(&scale, &e, sizeof(scale));
    vf res = p * scale;
    return lo != 0 ? vf{} : res;
}

inline vf vlog(vf x) {  // x > 0
    vi bits;
    std::memcpy(&bits, &x, sizeof(bits));
    vi e = ((bits >> 23) & 0xff) - 126;
    bits = (bits & 0x807fffff) | 0x3f000000;
    vf m;
    std::memcpy(&m, &bits, sizeof(m));                  // m in [0.5, 1)
    vf ef = __builtin_convertvector(e, vf);
    auto small = m < 0.707106781186547524f;
    ef = small ? ef - 1.0f : ef;
    m = small ? m + m - 1.0f : m - 1.0f;
    vf z = m * m;
    vf y = vf{} + 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y = y - ef * 2.12194440e-4f;
    y = y - 0.5f * z;
    return m + y + ef * 0.693359375f;
}

// softplus(x) = log(1 + exp(x)), x for x > 20 (as torch); log1p via log(1+e) * e / ((1+e) - 1).
inline vf vsoftplus(vf x) {
    vf e = vexp(x);
    vf u = e + 1.0f;
    vf d = u - 1.0f;
    vf l = vlog(u) * (e / (d == 0 ? vf{} + 1.0f : d));
    l = d == 0 ? e : l;
    return x > 20.0f ? x : l;
}

// double: per-lane libm calls (used for float64 checks, where exactness matters more than speed).
typedef Vec<double>::type vd;
inline vd vexp(vd x) { vd r; for (int i = 0; i < Vec<double>::W; ++i) r[i] = std::exp(x[i]); return r; }
inline vd vsoftplus(vd x) {
    vd r; for (int i = 0; i < Vec<double>::W; ++i) r[i] = x[i] > 20.0 ? x[i] : std::log1p(std::exp(x[i])); return r;
}

template <typename V> inline V vsigmoid(V x) { return 1 / (1 + vexp(-x)); }

// masked loads and stores for the last channel group when d is not a multiple of W
template <typename T> inline typename Vec<T>::type load(const T* p, int n) {
    typename Vec<T>::type v{};
    if (n == Vec<T>::W) std::memcpy(&v, p, sizeof(v));
    else for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
}
template <typename T> inline void store(T* p, typename Vec<T>::type v, int n) {
    if (n == Vec<T>::W) std::memcpy(p, &v, sizeof(v));
    else for (int i = 0; i < n; ++i) p[i] = v[i];
}
// strided variants: `sd` = element stride between adjacent channels (1: contiguous, the fast path)
template <typename T> inline typename Vec<T>::type loads(const T* p, int n, int64_t sd) {
    if (sd == 1) return load<T>(p, n);
    typename Vec<T>::type v{};
    for (int i = 0; i < n; ++i) v[i] = p[i * sd];
    return v;
}
template <typename T> inline void stores(T* p, typename Vec<T>::type v, int n, int64_t sd) {
    if (sd == 1) return store<T>(p, v, n);
    for (int i = 0; i < n; ++i) p[i * sd] = v[i];
}
template <typename T> inline T hsum(typename Vec<T>::type v) {
    T s = 0;
    for (int i = 0; i < Vec<T>::W; ++i) s += v[i];
    return s;
}

}  // namespace

extern "C" {

// Every pointer may be null when unused (D, z, bias, ckpt in the forward; the gradients of absent inputs).
struct ScanParams {
    int64_t batch, dim, len, nstate, chunk;
    int32_t softplus, nthreads;
    const void *u, *delta, *A, *B, *C, *D, *z, *bias;
    void *out, *ckpt;
    const void* dout;
    void *du, *ddelta, *dz, *dA, *dB, *dC, *dD, *dbias;
    // strides in elements: [batch, time] for the d-contiguous tensors, [batch, state, time] for B, C
    int64_t u_sb, u_sl, delta_sb, delta_sl, z_sb, z_sl, out_sb, out_sl, dout_sb, dout_sl;
    int64_t grad_sb, grad_sl;  // shared by du, ddelta, dz
    int64_t B_sb, B_sn, B_sl, C_sb, C_sn, C_sl;
    // strides along d of u, delta, z, out, dout and the per-element gradients (1 = contiguous channels)
    int64_t u_sd, delta_sd, z_sd, out_sd, dout_sd, grad_sd;
    // optional per-batch addressing, [batch][7] each, in the order u, delta, z, out, dout, B, C: element
    // offsets of the batch's (t = 0, d = 0) element, and time strides (may be negative: a reversed stream).
    // When set they replace the *_sb batch strides and *_sl time strides of those tensors.
    const int64_t* boff;
    const int64_t* btsl;
};

enum { OU = 0, ODL = 1, OZ = 2, OOUT = 3, ODOUT = 4, OB = 5, OC = 6, NOFF = 7 };

int rdfa_scan_lanes(int is_double) { return is_double ? Vec<double>::W : Vec<float>::W; }

}  // extern "C"

namespace {

// Per-batch addressing of one tensor: the (t = 0, d = 0) element's offset and the time stride.
struct Addr {
    int64_t off, sl;
};
inline Addr addr(const ScanParams& p, int k, int64_t b, int64_t sb, int64_t sl) {
    if (p.boff) return Addr{p.boff[b * NOFF + k], p.btsl[b * NOFF + k]};
    return Addr{b * sb, sl};
}

template <typename T>
void scan_forward(const ScanParams& p) {
    typedef typename Vec<T>::type V;
    constexpr int W = Vec<T>::W;
    const int64_t L = p.len, N = p.nstate, G = (p.dim + W - 1) / W, K = p.chunk;
    const int64_t nchunks = (L + K - 1) / K;
    const T *u = (const T*)p.u, *dl = (const T*)p.delta, *A = (const T*)p.A, *Bm = (const T*)p.B,
            *Cm = (const T*)p.C, *Dv = (const T*)p.D, *z = (const T*)p.z, *bias = (const T*)p.bias;
    T *out = (T*)p.out, *ckpt = (T*)p.ckpt;
#pragma omp parallel num_threads(p.nthreads)
    {
        std::vector<V> a(N), h(N);
#pragma omp for schedule(static)
        for (int64_t item = 0; item < p.batch * G; ++item) {
            const int64_t b = item / G, d0 = (item % G) * W;
            const int nl = (int)std::min<int64_t>(W, p.dim - d0);
            for (int64_t n = 0; n < N; ++n) {
                for (int i = 0; i < W; ++i) a[n][i] = i < nl ? A[(d0 + i) * N + n] : T(0);
                h[n] = V{};
            }
            const V Dd = Dv ? load(Dv + d0, nl) : V{};
            const V bb = bias ? load(bias + d0, nl) : V{};
            const Addr au = addr(p, OU, b, p.u_sb, p.u_sl), ad = addr(p, ODL, b, p.delta_sb, p.delta_sl),
                       az = addr(p, OZ, b, p.z_sb, p.z_sl), ao = addr(p, OOUT, b, p.out_sb, p.out_sl),
                       aB = addr(p, OB, b, p.B_sb, p.B_sl), aC = addr(p, OC, b, p.C_sb, p.C_sl);
            const T *ub = u + au.off + d0 * p.u_sd, *db = dl + ad.off + d0 * p.delta_sd;
            const T* zb = z ? z + az.off + d0 * p.z_sd : nullptr;
            T* ob = out + ao.off + d0 * p.out_sd;
            const T *Bb = Bm + aB.off, *Cb = Cm + aC.off;
            T* ck = ckpt ? ckpt + (b * G + item % G) * nchunks * N * W : nullptr;
            for (int64_t t = 0; t < L; ++t) {
                if (ck && t % K == 0) std::memcpy(ck + (t / K) * N * W, h.data(), N * sizeof(V));
                V dt = loads(db + t * ad.sl, nl, p.delta_sd) + bb;
                if (p.softplus) dt = vsoftplus(dt);
                const V uu = loads(ub + t * au.sl, nl, p.u_sd);
                const V dtu = dt * uu;
                V y = Dd * uu;
                for (int64_t n = 0; n < N; ++n) {
                    h[n] = vexp(dt * a[n]) * h[n] + dtu * Bb[n * p.B_sn + t * aB.sl];
                    y += h[n] * Cb[n * p.C_sn + t * aC.sl];
                }
                if (zb) {
                    const V zz = loads(zb + t * az.sl, nl, p.z_sd);
                    y = y * zz * vsigmoid(zz);
                }
                stores(ob + t * ao.sl, y, nl, p.out_sd);
            }
        }
    }
}

template <typename T>
void scan_backward(const ScanParams& p) {
    typedef typename Vec<T>::type V;
    constexpr int W = Vec<T>::W;
    const int64_t L = p.len, N = p.nstate, G = (p.dim + W - 1) / W, K = p.chunk;
    const int64_t nchunks = (L + K - 1) / K, items = p.batch * G;
    const T *u = (const T*)p.u, *dl = (const T*)p.delta, *A = (const T*)p.A, *Bm = (const T*)p.B,
            *Cm = (const T*)p.C, *Dv = (const T*)p.D, *z = (const T*)p.z, *bias = (const T*)p.bias,
            *ckpt = (const T*)p.ckpt, *dout = (const T*)p.dout;
    T *du = (T*)p.du, *ddl = (T*)p.ddelta, *dz = (T*)p.dz, *dA = (T*)p.dA, *dB = (T*)p.dB, *dC = (T*)p.dC,
      *dD = (T*)p.dD, *dbias = (T*)p.dbias;
    const int64_t usd = p.u_sd, dsd = p.delta_sd, zsd = p.z_sd, gsd = p.grad_sd, osd = p.dout_sd;
#pragma omp parallel num_threads(p.nthreads)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        const int64_t lo = items * tid / nt, hi = items * (tid + 1) / nt;
        // per-thread partial sums over channels: dB, dC [batch, N, L] at offset tid
        T* dBt = dB + (int64_t)tid * p.batch * N * L;
        T* dCt = dC + (int64_t)tid * p.batch * N * L;
        std::vector<V> hbuf((K + 1) * N), abuf(K * N), dtbuf(K), ybuf(K), dBacc(K * N), dCacc(K * N);
        std::vector<V> a(N);
        for (int64_t b0 = lo; b0 < hi;) {  // items of one batch index at a time: [b0, b1)
            const int64_t b = b0 / G, b1 = std::min(hi, (b + 1) * G);
            const int64_t ng = b1 - b0;
            std::vector<V> carry(ng * N, V{}), dAacc(ng * N, V{}), dDacc(ng, V{}), dbacc(ng, V{});
            const Addr au = addr(p, OU, b, p.u_sb, p.u_sl), ad = addr(p, ODL, b, p.delta_sb, p.delta_sl),
                       az = addr(p, OZ, b, p.z_sb, p.z_sl), ag = addr(p, ODOUT, b, p.dout_sb, p.dout_sl),
                       aB = addr(p, OB, b, p.B_sb, p.B_sl), aC = addr(p, OC, b, p.C_sb, p.C_sl);
            const T *Bb = Bm + aB.off, *Cb = Cm + aC.off;
            for (int64_t c = nchunks - 1; c >= 0; --c) {
                const int64_t t0 = c * K, t1 = std::min(L, t0 + K), nk = t1 - t0;
                std::fill(dBacc.begin(), dBacc.begin() + nk * N, V{});
                std::fill(dCacc.begin(), dCacc.begin() + nk * N, V{});
                for (int64_t it = b0; it < b1; ++it) {
                    const int64_t g = it % G, d0 = g * W, j = it - b0;
                    const int nl = (int)std::min<int64_t>(W, p.dim - d0);
                    const T *ub = u + au.off + d0 * usd, *db = dl + ad.off + d0 * dsd,
                            *gb = dout + ag.off + d0 * osd;
                    const T* zb = z ? z + az.off + d0 * zsd : nullptr;
                    const int64_t goff = b * p.grad_sb + d0 * gsd;
                    for (int64_t n = 0; n < N; ++n)
                        for (int i = 0; i < W; ++i) a[n][i] = i < nl ? A[(d0 + i) * N + n] : T(0);
                    const V Dd = Dv ? load(Dv + d0, nl) : V{};
                    const V bb = bias ? load(bias + d0, nl) : V{};
                    // recompute the chunk: hbuf[(s+1)*N + n] = state after step t0+s, hbuf[n] = before t0
                    std::memcpy(hbuf.data(), ckpt + ((b * G + g) * nchunks + c) * N * W, N * sizeof(V));
                    for (int64_t s = 0; s < nk; ++s) {
                        const int64_t t = t0 + s;
                        V dt = loads(db + t * ad.sl, nl, dsd) + bb;
                        if (p.softplus) dt = vsoftplus(dt);
                        const V uu = loads(ub + t * au.sl, nl, usd);
                        const V dtu = dt * uu;
                        V y = Dd * uu;
                        const V* hp = &hbuf[s * N];
                        V* hn = &hbuf[(s + 1) * N];
                        for (int64_t n = 0; n < N; ++n) {
                            const V an = vexp(dt * a[n]);
                            abuf[s * N + n] = an;
                            hn[n] = an * hp[n] + dtu * Bb[n * p.B_sn + t * aB.sl];
                            y += hn[n] * Cb[n * p.C_sn + t * aC.sl];
                        }
                        dtbuf[s] = dt;
                        ybuf[s] = y;
                    }
                    // adjoint recurrence, backwards in time
                    V* cr = &carry[j * N];
                    V* dAa = &dAacc[j * N];
                    for (int64_t s = nk - 1; s >= 0; --s) {
                        const int64_t t = t0 + s;
                        const V g_out = loads(gb + t * ag.sl, nl, osd);
                        const V uu = loads(ub + t * au.sl, nl, usd);
                        const V dt = dtbuf[s];
                        V dy = g_out;
                        if (zb) {
                            const V zz = loads(zb + t * az.sl, nl, zsd);
                            const V sg = vsigmoid(zz);
                            dy = g_out * zz * sg;
                            if (dz) stores(dz + goff + t * p.grad_sl,
                                           g_out * ybuf[s] * sg * (1 + zz * (1 - sg)), nl, gsd);
                        }
                        V duu = dy * Dd, ddt = V{};
                        dDacc[j] += dy * uu;
                        const V dtu = dt * uu;
                        const V* hp = &hbuf[s * N];
                        const V* hn = &hbuf[(s + 1) * N];
                        for (int64_t n = 0; n < N; ++n) {
                            const T Bn = Bb[n * p.B_sn + t * aB.sl], Cn = Cb[n * p.C_sn + t * aC.sl];
                            const V gh = dy * Cn + cr[n];           // dL/dh_t
                            dCacc[s * N + n] += dy * hn[n];
                            const V an = abuf[s * N + n];
                            const V x = gh * hp[n] * an;             // dL/d(dt*A) through the decay
                            ddt += x * a[n] + gh * uu * Bn;
                            dAa[n] += x * dt;
                            duu += gh * dt * Bn;
                            dBacc[s * N + n] += gh * dtu;
                            cr[n] = an * gh;
                        }
                        if (p.softplus) {
                            const V raw = loads(db + t * ad.sl, nl, dsd) + bb;
                            ddt = raw > 20 ? ddt : ddt * vsigmoid(raw);
                        }
                        dbacc[j] += ddt;
                        stores(du + goff + t * p.grad_sl, duu, nl, gsd);
                        stores(ddl + goff + t * p.grad_sl, ddt, nl, gsd);
                    }
                }
                for (int64_t s = 0; s < nk; ++s)
                    for (int64_t n = 0; n < N; ++n) {
                        dBt[(b * N + n) * L + t0 + s] += hsum<T>(dBacc[s * N + n]);
                        dCt[(b * N + n) * L + t0 + s] += hsum<T>(dCacc[s * N + n]);
                    }
            }
            for (int64_t it = b0; it < b1; ++it) {  // per-batch partials: dA [batch, d, N], dD, dbias [batch, d]
                const int64_t d0 = (it % G) * W, j = it - b0;
                const int nl = (int)std::min<int64_t>(W, p.dim - d0);
                for (int i = 0; i < nl; ++i) {
                    for (int64_t n = 0; n < N; ++n) dA[(b * p.dim + d0 + i) * N + n] = dAacc[j * N + n][i];
                    if (dD) dD[b * p.dim + d0 + i] = dDacc[j][i];
                    if (dbias) dbias[b * p.dim + d0 + i] = dbacc[j][i];
                }
            }
            b0 = b1;
        }
    }
}

}  // namespace

extern "C" {

// ---- the Bi-S6 mixer's causal depthwise convolutions + SiLU, both directions by index arithmetic ----------
//
// x is the in-projection's output [batch, len, *] (channel stride 1); stream s of batch b reads the `dim`
// channels at x_coff[s], in time order for s = 0 and reversed for s = 1 (x_s(t) = x[b, len-1-t, x_coff[1]+d]).
// For K kernels of sizes k_i (taps w[i, j, d], j < k_i, bias[i, d]):
//   c_i(t) = bias[i] + sum_j w[i, j] * x_s(t - (k_i - 1) + j)     (x_s = 0 before the start: causal)
//   u[i, s * batch + b, t, d] = c_i(t) * sigmoid(c_i(t))           u: [K, 2 * batch, len, dim] contiguous
// The backward recomputes c, walks t downwards and writes dx (into the x channels of a [batch, len, *]
// buffer, same addressing as x) and per-stream partial sums dw [2*batch, K, kmax, dim], dbias [2*batch, K, dim].
struct ConvParams {
    int64_t batch, len, dim, nk, kmax;
    int32_t nthreads, pad;
    const int64_t* ksz;  // [K] kernel sizes
    const void *x, *w, *bias, *du;
    void *u, *dx, *dw, *dbias;
    int64_t x_sb, x_sl;
    int64_t x_coff[2];
};

}  // extern "C"

namespace {

constexpr int CONV_KMAX = 16;
constexpr int64_t CONV_TB = 128;  // time steps per work item: items walk all channel groups of one time block

// The sizes of one conv call, and its work items (stream-batch, time block, channel group), the group fastest:
// neighbouring items read the same rows of x, so each row is fetched from memory once. Forward and backward
// share the item layout (the backward's partial sums are indexed by (stream-batch, time block)).
struct ConvDims {
    int64_t L, Nd, G, K, KM, S2, NT;
    ConvDims(const ConvParams& p, int W)
        : L(p.len), Nd(p.dim), G((p.dim + W - 1) / W), K(p.nk), KM(p.kmax), S2(2 * p.batch),
          NT((p.len + CONV_TB - 1) / CONV_TB) {}
    int64_t items() const { return S2 * NT * G; }
};

struct ConvItem {
    int64_t sb, tb, d0, t0, t1;  // stream-batch, time block, first channel, steps [t0, t1)
    int nl;                      // lanes in use (channels d0 .. d0 + nl - 1)
    int64_t tsl, xoff;           // time stride of x_s (negative for the reversed stream), offset of x_s(0) at d0
    ConvItem(const ConvParams& p, const ConvDims& n, int W, int64_t item) {
        const int64_t g = item % n.G;
        tb = (item / n.G) % n.NT;
        sb = item / (n.G * n.NT);
        d0 = g * W;
        const int64_t s = sb / p.batch, b = sb % p.batch;
        t0 = tb * CONV_TB;
        t1 = std::min(n.L, t0 + CONV_TB);
        nl = (int)std::min<int64_t>(W, n.Nd - d0);
        tsl = s ? -p.x_sl : p.x_sl;
        xoff = b * p.x_sb + (s ? (n.L - 1) * p.x_sl : 0) + p.x_coff[s] + d0;
    }
};

// xr[KM-1-m] = x_s(t - m), zeros before the start (rows just read, so the reloads hit L1)
template <typename T, typename V>
inline void conv_window(V* xr, const T* xb, int64_t t, int64_t KM, int64_t tsl, int nl) {
    for (int64_t m = 0; m < KM; ++m) {
        const int64_t tt = t - (KM - 1) + m;
        xr[m] = tt >= 0 ? load(xb + tt * tsl, nl) : V{};
    }
}

template <typename T>
void conv_forward(const ConvParams& p) {
    typedef typename Vec<T>::type V;
    constexpr int W = Vec<T>::W;
    const ConvDims n(p, W);
    const int64_t L = n.L, Nd = n.Nd, K = n.K, KM = n.KM, S2 = n.S2;
    const T *x = (const T*)p.x, *w = (const T*)p.w, *bias = (const T*)p.bias;
    T* u = (T*)p.u;
#pragma omp parallel for schedule(static) num_threads(p.nthreads)
    for (int64_t item = 0; item < n.items(); ++item) {
        const ConvItem it(p, n, W, item);
        const int64_t sb = it.sb, d0 = it.d0;
        const int nl = it.nl;
        const T* xb = x + it.xoff;
        V xr[CONV_KMAX];
        for (int64_t t = it.t0; t < it.t1; ++t) {
            conv_window(xr, xb, t, KM, it.tsl, nl);
            for (int64_t i = 0; i < K; ++i) {
                const int64_t k = p.ksz[i];
                V c = load(bias + i * Nd + d0, nl);
                for (int64_t j = 0; j < k; ++j) c += load(w + (i * KM + j) * Nd + d0, nl) * xr[KM - k + j];
                store(u + ((i * S2 + sb) * L + t) * Nd + d0, c * vsigmoid(c), nl);
            }
        }
    }
}

template <typename T>
void conv_backward(const ConvParams& p) {
    typedef typename Vec<T>::type V;
    constexpr int W = Vec<T>::W;
    const ConvDims n(p, W);
    const int64_t L = n.L, Nd = n.Nd, K = n.K, KM = n.KM, S2 = n.S2, NT = n.NT;
    const T *x = (const T*)p.x, *w = (const T*)p.w, *bias = (const T*)p.bias, *du = (const T*)p.du;
    T *dx = (T*)p.dx, *dw = (T*)p.dw, *dbias = (T*)p.dbias;
#pragma omp parallel num_threads(p.nthreads)
    {
        std::vector<V> wv(K * KM), bv(K), dwa(K * KM), dba(K), dcr(K * KM);
#pragma omp for schedule(static)
        for (int64_t item = 0; item < n.items(); ++item) {
            const ConvItem it(p, n, W, item);
            const int64_t sb = it.sb, tb = it.tb, d0 = it.d0, t0 = it.t0, t1 = it.t1, tsl = it.tsl;
            const int nl = it.nl;
            const T* xb = x + it.xoff;
            T* dxb = dx ? dx + it.xoff : nullptr;
            for (int64_t i = 0; i < K; ++i) {
                bv[i] = load(bias + i * Nd + d0, nl);
                dba[i] = V{};
                for (int64_t j = 0; j < KM; ++j) {
                    wv[i * KM + j] = load(w + (i * KM + j) * Nd + d0, nl);
                    dwa[i * KM + j] = V{};
                    dcr[i * KM + j] = V{};  // dcr[i*KM + m] = dc_i(t + m)
                }
            }
            V xr[CONV_KMAX];
            auto window = [&](int64_t t) { conv_window(xr, xb, t, KM, tsl, nl); };
            auto dc_at = [&](int64_t i, int64_t t) {  // d(loss)/d(conv output) of kernel i at step t; needs window(t)
                const int64_t k = p.ksz[i];
                V c = bv[i];
                for (int64_t j = 0; j < k; ++j) c += wv[i * KM + j] * xr[KM - k + j];
                const V sg = vsigmoid(c);
                return load(du + ((i * S2 + sb) * L + t) * Nd + d0, nl) * sg * (1 + c * (1 - sg));
            };
            // prime the rings with dc at t1 .. t1+KM-2 (the next block's steps that read this block's x)
            for (int64_t t = std::min(L - 1, t1 + KM - 2); t >= t1; --t) {
                window(t);
                for (int64_t i = 0; i < K; ++i) {
                    V* r = &dcr[i * KM];
                    for (int64_t m = KM - 1; m > 0; --m) r[m] = r[m - 1];
                    r[0] = dc_at(i, t);
                }
            }
            for (int64_t t = t1 - 1; t >= t0; --t) {
                window(t);
                V gx = V{};
                for (int64_t i = 0; i < K; ++i) {
                    const int64_t k = p.ksz[i];
                    const V dc = dc_at(i, t);
                    V* r = &dcr[i * KM];
                    for (int64_t m = KM - 1; m > 0; --m) r[m] = r[m - 1];
                    r[0] = dc;
                    dba[i] += dc;
                    for (int64_t j = 0; j < k; ++j) {
                        dwa[i * KM + j] += dc * xr[KM - k + j];
                        gx += wv[i * KM + j] * r[k - 1 - j];  // tap j of step t + (k-1) - j reads x_s(t)
                    }
                }
                if (dxb) store(dxb + t * tsl, gx, nl);
            }
            const int64_t part = sb * NT + tb;  // partial sums per (stream-batch, time block)
            for (int64_t i = 0; i < K; ++i) {
                if (dbias) store(dbias + (part * K + i) * Nd + d0, dba[i], nl);
                if (dw)
                    for (int64_t j = 0; j < KM; ++j) store(dw + ((part * K + i) * KM + j) * Nd + d0, dwa[i * KM + j], nl);
            }
        }
    }
}

int conv_time_block() { return (int)CONV_TB; }

}  // namespace

extern "C" {
void rdfa_scan_fwd_f32(const ScanParams* p) { scan_forward<float>(*p); }
void rdfa_scan_fwd_f64(const ScanParams* p) { scan_forward<double>(*p); }
void rdfa_scan_bwd_f32(const ScanParams* p) { scan_backward<float>(*p); }
void rdfa_scan_bwd_f64(const ScanParams* p) { scan_backward<double>(*p); }
void rdfa_conv_fwd_f32(const ConvParams* p) { conv_forward<float>(*p); }
void rdfa_conv_fwd_f64(const ConvParams* p) { conv_forward<double>(*p); }
void rdfa_conv_bwd_f32(const ConvParams* p) { conv_backward<float>(*p); }
void rdfa_conv_bwd_f64(const ConvParams* p) { conv_backward<double>(*p); }
int rdfa_conv_kmax() { return CONV_KMAX; }
int rdfa_conv_time_block() { return conv_time_block(); }

// The layout of struct `which` (0: ScanParams, 1: ConvParams) as text, "size name@offset name@offset ...", the
// fields in declaration order: native.py compares its ctypes mirrors with it when it loads this library.
const char* rdfa_struct_layout(int which) {
#define RDFA_FIELD(S, f) (std::string(" ") + #f + "@" + std::to_string(offsetof(S, f)))
    static const std::string scan = std::to_string(sizeof(ScanParams))
        + RDFA_FIELD(ScanParams, batch) + RDFA_FIELD(ScanParams, dim) + RDFA_FIELD(ScanParams, len)
        + RDFA_FIELD(ScanParams, nstate) + RDFA_FIELD(ScanParams, chunk) + RDFA_FIELD(ScanParams, softplus)
        + RDFA_FIELD(ScanParams, nthreads) + RDFA_FIELD(ScanParams, u) + RDFA_FIELD(ScanParams, delta)
        + RDFA_FIELD(ScanParams, A) + RDFA_FIELD(ScanParams, B) + RDFA_FIELD(ScanParams, C)
        + RDFA_FIELD(ScanParams, D) + RDFA_FIELD(ScanParams, z) + RDFA_FIELD(ScanParams, bias)
        + RDFA_FIELD(ScanParams, out) + RDFA_FIELD(ScanParams, ckpt) + RDFA_FIELD(ScanParams, dout)
        + RDFA_FIELD(ScanParams, du) + RDFA_FIELD(ScanParams, ddelta) + RDFA_FIELD(ScanParams, dz)
        + RDFA_FIELD(ScanParams, dA) + RDFA_FIELD(ScanParams, dB) + RDFA_FIELD(ScanParams, dC)
        + RDFA_FIELD(ScanParams, dD) + RDFA_FIELD(ScanParams, dbias) + RDFA_FIELD(ScanParams, u_sb)
        + RDFA_FIELD(ScanParams, u_sl) + RDFA_FIELD(ScanParams, delta_sb) + RDFA_FIELD(ScanParams, delta_sl)
        + RDFA_FIELD(ScanParams, z_sb) + RDFA_FIELD(ScanParams, z_sl) + RDFA_FIELD(ScanParams, out_sb)
        + RDFA_FIELD(ScanParams, out_sl) + RDFA_FIELD(ScanParams, dout_sb) + RDFA_FIELD(ScanParams, dout_sl)
        + RDFA_FIELD(ScanParams, grad_sb) + RDFA_FIELD(ScanParams, grad_sl) + RDFA_FIELD(ScanParams, B_sb)
        + RDFA_FIELD(ScanParams, B_sn) + RDFA_FIELD(ScanParams, B_sl) + RDFA_FIELD(ScanParams, C_sb)
        + RDFA_FIELD(ScanParams, C_sn) + RDFA_FIELD(ScanParams, C_sl) + RDFA_FIELD(ScanParams, u_sd)
        + RDFA_FIELD(ScanParams, delta_sd) + RDFA_FIELD(ScanParams, z_sd) + RDFA_FIELD(ScanParams, out_sd)
        + RDFA_FIELD(ScanParams, dout_sd) + RDFA_FIELD(ScanParams, grad_sd) + RDFA_FIELD(ScanParams, boff)
        + RDFA_FIELD(ScanParams, btsl);
    static const std::string conv = std::to_string(sizeof(ConvParams))
        + RDFA_FIELD(ConvParams, batch) + RDFA_FIELD(ConvParams, len) + RDFA_FIELD(ConvParams, dim)
        + RDFA_FIELD(ConvParams, nk) + RDFA_FIELD(ConvParams, kmax) + RDFA_FIELD(ConvParams, nthreads)
        + RDFA_FIELD(ConvParams, pad) + RDFA_FIELD(ConvParams, ksz) + RDFA_FIELD(ConvParams, x)
        + RDFA_FIELD(ConvParams, w) + RDFA_FIELD(ConvParams, bias) + RDFA_FIELD(ConvParams, du)
        + RDFA_FIELD(ConvParams, u) + RDFA_FIELD(ConvParams, dx) + RDFA_FIELD(ConvParams, dw)
        + RDFA_FIELD(ConvParams, dbias) + RDFA_FIELD(ConvParams, x_sb) + RDFA_FIELD(ConvParams, x_sl)
        + RDFA_FIELD(ConvParams, x_coff);
#undef RDFA_FIELD
    return which == 0 ? scan.c_str() : which == 1 ? conv.c_str() : "";
}
}
