// sinlstm_adam_update: MXNet's dense adam_update for several parameters in one operator call.
//
// Inputs: the n weights, then their n gradients, n means and n variances; outputs: the n new
// weights (called with out=weights, as MXNet's Adam calls adam_update). Means and variances are
// updated in place. Attributes, as MXNet's adam_update takes them but one value per parameter
// where the optimizer sets one per parameter: lrs and wds (comma-separated, n each),
// rescale_grad, beta1, beta2, epsilon, clip_gradient (optional, negative = no clipping).
//
// Every element is computed with the arithmetic of MXNet 1.9.1's AdamUpdateKernel
// (src/operator/optimizer_op-inl.h) in float32, and every number is parsed by the parser MXNet's
// operator parameters use (dmlc::stof), so the results are bit-identical to n adam_update calls.
// No fused multiply-add may be formed here: that would round differently.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "dmlc/strtonum.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;

namespace {

constexpr const char* kOpName = "sinlstm_adam_update";

struct AdamAttrs {
  std::vector<float> lrs, wds;
  float rescale_grad = 1.f, beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f, clip_gradient = -1.f;
};

bool parse_number(const std::string& key, const std::string& text, float* value, std::string* err) {
  size_t pos = 0;
  try {
    *value = dmlc::stof(text, &pos);
  } catch (const std::exception&) {
    pos = std::string::npos;
  }
  if (pos != text.size() || text.empty()) {
    *err = std::string(kOpName) + ": attribute " + key + " must be a number, got '" + text + "'";
    return false;
  }
  return true;
}

bool parse_list(const std::string& key, const std::string& text, std::vector<float>* values, std::string* err) {
  values->clear();
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    float v = 0.f;
    if (!parse_number(key, item, &v, err)) return false;
    values->push_back(v);
  }
  if (values->empty()) {
    *err = std::string(kOpName) + ": attribute " + key + " must hold one number per parameter";
    return false;
  }
  return true;
}

bool parse_attrs(const std::unordered_map<std::string, std::string>& attrs, AdamAttrs* out, std::string* err) {
  const auto lrs = attrs.find("lrs"), wds = attrs.find("wds");
  if (lrs == attrs.end() || wds == attrs.end()) {
    *err = std::string(kOpName) + ": attributes lrs and wds are required (one value per parameter)";
    return false;
  }
  if (!parse_list("lrs", lrs->second, &out->lrs, err) || !parse_list("wds", wds->second, &out->wds, err))
    return false;
  if (out->lrs.size() != out->wds.size()) {
    *err = std::string(kOpName) + ": lrs and wds must hold the same number of values";
    return false;
  }
  const std::pair<const char*, float*> scalars[] = {{"rescale_grad", &out->rescale_grad}, {"beta1", &out->beta1},
                                                    {"beta2", &out->beta2}, {"epsilon", &out->epsilon},
                                                    {"clip_gradient", &out->clip_gradient}};
  for (const auto& s : scalars) {
    const auto it = attrs.find(s.first);
    if (it != attrs.end() && !parse_number(s.first, it->second, s.second, err)) return false;
  }
  return true;
}

// One element, as AdamUpdateKernel::Map with DType = float.
inline void adam_element(float* out, float* mean, float* var, const float* weight, const float* grad, size_t i,
                         const AdamAttrs& a, float lr, float wd) {
  float g = grad[i] * a.rescale_grad + weight[i] * wd;
  if (a.clip_gradient >= 0.f) g = g > a.clip_gradient ? a.clip_gradient : (g < -a.clip_gradient ? -a.clip_gradient : g);
  mean[i] = a.beta1 * mean[i] + (1.f - a.beta1) * g;
  var[i] = a.beta2 * var[i] + (1.f - a.beta2) * g * g;
  out[i] = weight[i] - lr * mean[i] / (std::sqrt(var[i]) + a.epsilon);
}

MXReturnValue forward(const std::unordered_map<std::string, std::string>& attrs, std::vector<MXTensor>* inputs,
                      std::vector<MXTensor>* outputs, const OpResource& res) {
  AdamAttrs a;
  std::string err;
  if (!parse_attrs(attrs, &a, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  const size_t n = a.lrs.size();
  for (size_t p = 0; p < n; ++p) {
    const float* weight = (*inputs)[p].data<float>();
    const float* grad = (*inputs)[n + p].data<float>();
    float* mean = (*inputs)[2 * n + p].data<float>();
    float* var = (*inputs)[3 * n + p].data<float>();
    float* out = (*outputs)[p].data<float>();
    const size_t size = static_cast<size_t>((*inputs)[p].size());
    for (size_t i = 0; i < size; ++i) adam_element(out, mean, var, weight, grad, i, a, a.lrs[p], a.wds[p]);
  }
  return MX_SUCCESS;
}

// The number of parameters: the values in lrs (the numbers themselves are read and checked by forward;
// MXNet asks for the counts on every call, so they are counted, not parsed).
int parameter_count(const std::unordered_map<std::string, std::string>& attrs) {
  const auto lrs = attrs.find("lrs");
  if (lrs == attrs.end() || lrs->second.empty()) return 0;
  return 1 + static_cast<int>(std::count(lrs->second.begin(), lrs->second.end(), ','));
}

MXReturnValue parseAttrs(const std::unordered_map<std::string, std::string>& attrs, int* num_in, int* num_out) {
  const int n = parameter_count(attrs);
  if (n == 0) {
    MX_ERROR_MSG << kOpName << ": attribute lrs is required (one learning rate per parameter)";
    return MX_FAIL;
  }
  *num_in = 4 * n;
  *num_out = n;
  return MX_SUCCESS;
}

MXReturnValue inferType(const std::unordered_map<std::string, std::string>& attrs, std::vector<int>* in_types,
                        std::vector<int>* out_types) {
  for (int t : *in_types) {
    if (t != kFloat32) {
      MX_ERROR_MSG << kOpName << ": supports float32 only, got dtype code " << t;
      return MX_FAIL;
    }
  }
  for (auto& t : *out_types) t = kFloat32;
  return MX_SUCCESS;
}

MXReturnValue inferShape(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<std::vector<unsigned int>>* in_shapes,
                         std::vector<std::vector<unsigned int>>* out_shapes) {
  const size_t n = out_shapes->size();
  for (size_t p = 0; p < n; ++p) {
    const auto& shape = (*in_shapes)[p];
    for (size_t k = 1; k < 4; ++k) {
      if ((*in_shapes)[k * n + p] != shape) {
        MX_ERROR_MSG << kOpName << ": the weight, gradient, mean and variance of parameter " << p
                     << " must have one shape";
        return MX_FAIL;
      }
    }
    (*out_shapes)[p] = shape;
  }
  return MX_SUCCESS;
}

MXReturnValue mutateInputs(const std::unordered_map<std::string, std::string>& attrs,
                           std::vector<int>* input_indices) {
  const int n = parameter_count(attrs);
  for (int i = 2 * n; i < 4 * n; ++i) input_indices->push_back(i);  // the means and variances
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(sinlstm_adam_update)
    .setForward(forward, "cpu")
    .setParseAttrs(parseAttrs)
    .setInferType(inferType)
    .setInferShape(inferShape)
    .setMutateInputs(mutateInputs);
