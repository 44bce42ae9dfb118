// rdfa-s6 native selective scan for CPUs: forward and hand-written backward.
//
// Semantics (real A), per batch b, channel d, state n, step t:
//   dt_t  = softplus(delta_t + bias)            (bias, softplus optional)
//   h_t   = exp(dt_t * A[d,n]) * h_{t-1} + dt_t * u_t * B[b,n,t]        h_{-1} = 0
//   y_t   = sum_n h_t * C[b,n,t] + D[d] * u_t
//   out_t = y_t * silu(z_t)                     (gate optional)
//
// Layout: the vector lanes run over channels d (W = 64 bytes / sizeof(T) adjacent channels), so u, delta,
// z, out and the per-element gradients must have stride 1 along d; any batch/time strides are accepted.
// B and C take any strides. Each work item is one batch index and one group of W channels; its state
// h[n][W] lives in a small buffer and the time axis is walked sequentially. The forward stores the state
// at the start of every `chunk` steps; the backward recomputes one chunk's states from that checkpoint and
// runs the adjoint recurrence over it in reverse, chunk by chunk. dB and dC (sums over d) accumulate in
// per-thread buffers that the caller adds up.
//
// Built by rdfa_s6/ssm/native.py with g++ -O3 -march=native -fopenmp; no PyTorch headers needed.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include <omp.h>

namespace {

template <typename T> struct Vec;
template <> struct Vec<float> {
    typedef float type __attribute__((vector_size(64)));
    typedef int32_t itype __attribute__((vector_size(64)));
    static constexpr int W = 16;
};
template <> struct Vec<double> {
    typedef double type __attribute__((vector_size(64)));
    typedef int64_t itype __attribute__((vector_size(64)));
    static constexpr int W = 8;
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
inline vd vexp(vd x) { vd r; for (int i = 0; i < 8; ++i) r[i] = std::exp(x[i]); return r; }
inline vd vsoftplus(vd x) {
    vd r; for (int i = 0; i < 8; ++i) r[i] = x[i] > 20.0 ? x[i] : std::log1p(std::exp(x[i])); return r;
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
};

int rdfa_scan_lanes(int is_double) { return is_double ? Vec<double>::W : Vec<float>::W; }

}  // extern "C"

namespace {

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
            const T *Bb = Bm + b * p.B_sb, *Cb = Cm + b * p.C_sb;
            T* ck = ckpt ? ckpt + (b * G + item % G) * nchunks * N * W : nullptr;
            for (int64_t t = 0; t < L; ++t) {
                if (ck && t % K == 0) std::memcpy(ck + (t / K) * N * W, h.data(), N * sizeof(V));
                V dt = load(dl + b * p.delta_sb + t * p.delta_sl + d0, nl) + bb;
                if (p.softplus) dt = vsoftplus(dt);
                const V uu = load(u + b * p.u_sb + t * p.u_sl + d0, nl);
                const V dtu = dt * uu;
                V y = Dd * uu;
                for (int64_t n = 0; n < N; ++n) {
                    h[n] = vexp(dt * a[n]) * h[n] + dtu * Bb[n * p.B_sn + t * p.B_sl];
                    y += h[n] * Cb[n * p.C_sn + t * p.C_sl];
                }
                if (z) {
                    const V zz = load(z + b * p.z_sb + t * p.z_sl + d0, nl);
                    y = y * zz * vsigmoid(zz);
                }
                store(out + b * p.out_sb + t * p.out_sl + d0, y, nl);
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
            const T *Bb = Bm + b * p.B_sb, *Cb = Cm + b * p.C_sb;
            for (int64_t c = nchunks - 1; c >= 0; --c) {
                const int64_t t0 = c * K, t1 = std::min(L, t0 + K), nk = t1 - t0;
                std::fill(dBacc.begin(), dBacc.begin() + nk * N, V{});
                std::fill(dCacc.begin(), dCacc.begin() + nk * N, V{});
                for (int64_t it = b0; it < b1; ++it) {
                    const int64_t g = it % G, d0 = g * W, j = it - b0;
                    const int nl = (int)std::min<int64_t>(W, p.dim - d0);
                    for (int64_t n = 0; n < N; ++n)
                        for (int i = 0; i < W; ++i) a[n][i] = i < nl ? A[(d0 + i) * N + n] : T(0);
                    const V Dd = Dv ? load(Dv + d0, nl) : V{};
                    const V bb = bias ? load(bias + d0, nl) : V{};
                    // recompute the chunk: hbuf[(s+1)*N + n] = state after step t0+s, hbuf[n] = before t0
                    std::memcpy(hbuf.data(), ckpt + ((b * G + g) * nchunks + c) * N * W, N * sizeof(V));
                    for (int64_t s = 0; s < nk; ++s) {
                        const int64_t t = t0 + s;
                        V dt = load(dl + b * p.delta_sb + t * p.delta_sl + d0, nl) + bb;
                        if (p.softplus) dt = vsoftplus(dt);
                        const V uu = load(u + b * p.u_sb + t * p.u_sl + d0, nl);
                        const V dtu = dt * uu;
                        V y = Dd * uu;
                        const V* hp = &hbuf[s * N];
                        V* hn = &hbuf[(s + 1) * N];
                        for (int64_t n = 0; n < N; ++n) {
                            const V an = vexp(dt * a[n]);
                            abuf[s * N + n] = an;
                            hn[n] = an * hp[n] + dtu * Bb[n * p.B_sn + t * p.B_sl];
                            y += hn[n] * Cb[n * p.C_sn + t * p.C_sl];
                        }
                        dtbuf[s] = dt;
                        ybuf[s] = y;
                    }
                    // adjoint recurrence, backwards in time
                    V* cr = &carry[j * N];
                    V* dAa = &dAacc[j * N];
                    for (int64_t s = nk - 1; s >= 0; --s) {
                        const int64_t t = t0 + s;
                        const V g_out = load(dout + b * p.dout_sb + t * p.dout_sl + d0, nl);
                        const V uu = load(u + b * p.u_sb + t * p.u_sl + d0, nl);
                        const V dt = dtbuf[s];
                        V dy = g_out;
                        if (z) {
                            const V zz = load(z + b * p.z_sb + t * p.z_sl + d0, nl);
                            const V sg = vsigmoid(zz);
                            dy = g_out * zz * sg;
                            if (dz) store(dz + b * p.grad_sb + t * p.grad_sl + d0,
                                          g_out * ybuf[s] * sg * (1 + zz * (1 - sg)), nl);
                        }
                        V duu = dy * Dd, ddt = V{};
                        dDacc[j] += dy * uu;
                        const V dtu = dt * uu;
                        const V* hp = &hbuf[s * N];
                        const V* hn = &hbuf[(s + 1) * N];
                        for (int64_t n = 0; n < N; ++n) {
                            const T Bn = Bb[n * p.B_sn + t * p.B_sl], Cn = Cb[n * p.C_sn + t * p.C_sl];
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
                            const V raw = load(dl + b * p.delta_sb + t * p.delta_sl + d0, nl) + bb;
                            ddt = raw > 20 ? ddt : ddt * vsigmoid(raw);
                        }
                        dbacc[j] += ddt;
                        store(du + b * p.grad_sb + t * p.grad_sl + d0, duu, nl);
                        store(ddl + b * p.grad_sb + t * p.grad_sl + d0, ddt, nl);
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
void rdfa_scan_fwd_f32(const ScanParams* p) { scan_forward<float>(*p); }
void rdfa_scan_fwd_f64(const ScanParams* p) { scan_forward<double>(*p); }
void rdfa_scan_bwd_f32(const ScanParams* p) { scan_backward<float>(*p); }
void rdfa_scan_bwd_f64(const ScanParams* p) { scan_backward<double>(*p); }
}
