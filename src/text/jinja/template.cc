// The tree-walking interpreter. Scoping follows Jinja2: each for-loop iteration and each macro call
// gets a fresh child scope (assignments inside do not leak out; reads see enclosing scopes); if
// blocks share their enclosing scope; namespace() objects are the one way to carry state out.
#include "text/jinja/template.h"

#include <cmath>
#include <map>

#include "core/utf8.h"
#include "text/jinja/ast.h"
#include "text/jinja/builtins.h"
#include "text/jinja/operators.h"
#include "text/jinja/parser.h"

namespace gemma_local::jinja {

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  const Value* Lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
      auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void Set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  std::shared_ptr<Scope> parent_;
  std::map<std::string, Value> vars_;
};

namespace {

enum class Flow { kNormal, kBreak, kContinue };

constexpr uint32_t kMaxValueDepth = 400;

class Interpreter {
 public:
  explicit Interpreter(const RenderOptions& options) : options_(options) {
    ctx_.options = &options_;
  }
  ~Interpreter() {
    // Namespaces can reference themselves (set ns.me = ns); break such cycles so nothing leaks.
    for (auto& ns : namespaces_) ns.namespace_attrs().clear();
  }

  Result<std::string> Run(const Body& body, const Value& context) {
    root_ = std::make_shared<Scope>(nullptr);
    if (!context.is_dict()) return InvalidArgumentError("template context must be a dict");
    for (const auto& [k, v] : context.as_dict()) {
      if (!k.is_string()) return InvalidArgumentError("template context keys must be strings");
      root_->Set(k.as_string(), v);
    }
    std::string out;
    GL_ASSIGN_OR_RETURN(Flow f, ExecBody(body, root_, out));
    (void)f;
    return out;
  }

 private:
  Status Err(int line, int column, const std::string& msg) const {
    return InvalidArgumentError("template error at line " + std::to_string(line) + ", column " +
                                std::to_string(column) + ": " + msg);
  }
  Status Err(const Expr& e, const std::string& msg) const { return Err(e.line, e.column, msg); }
  Status Located(const Expr& e, const Status& s) const {
    if (s.message().rfind("template error at line", 0) == 0) return s;
    return Status(s.code(), "template error at line " + std::to_string(e.line) + ", column " +
                                std::to_string(e.column) + ": " + s.message());
  }

  Status Append(std::string& out, const std::string& text, int line, int column) {
    if (out.size() + text.size() > options_.max_output_bytes) {
      return Status(StatusCode::kResourceExhausted,
                    "template error at line " + std::to_string(line) + ", column " +
                        std::to_string(column) + ": output exceeds " +
                        std::to_string(options_.max_output_bytes) + " bytes");
    }
    out += text;
    return Status::Ok();
  }

  Status CheckSize(const Expr& e, const Value& v) const {
    if (v.depth() > kMaxValueDepth) {
      return Status(
          StatusCode::kResourceExhausted,
          "template error at line " + std::to_string(e.line) + ": value nested too deeply");
    }
    if (v.is_string() && v.as_string().size() > options_.max_output_bytes) {
      return Status(StatusCode::kResourceExhausted,
                    "template error at line " + std::to_string(e.line) + ": string too large");
    }
    if (v.is_list() && v.as_list().size() > options_.max_container_items) {
      return Status(StatusCode::kResourceExhausted,
                    "template error at line " + std::to_string(e.line) + ": list too large");
    }
    return Status::Ok();
  }

  // ---- statements ----
  Result<Flow> ExecBody(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
    for (const auto& s : body) {
      GL_ASSIGN_OR_RETURN(Flow f, Exec(*s, scope, out));
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Result<Flow> Exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::kData:
        GL_RETURN_IF_ERROR(Append(out, s.text, s.line, s.column));
        return Flow::kNormal;
      case Stmt::Kind::kPrint: {
        GL_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        GL_RETURN_IF_ERROR(Append(out, v.Str(), s.line, s.column));
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < s.conditions.size(); ++i) {
          GL_ASSIGN_OR_RETURN(Value c, Eval(*s.conditions[i], scope));
          if (c.Truthy()) return ExecBody(s.bodies[i], scope, out);
        }
        return ExecBody(s.else_body, scope, out);
      case Stmt::Kind::kFor:
        return ExecFor(s, scope, out);
      case Stmt::Kind::kSet: {
        GL_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        if (!s.ns_name.empty()) {
          const Value* ns = scope->Lookup(s.ns_name);
          if (ns == nullptr || !ns->is_namespace()) {
            return Err(*s.expr, "cannot assign attribute on non-namespace object");
          }
          ValueDict& attrs = ns->namespace_attrs();
          for (auto& kv : attrs) {
            if (kv.first.as_string() == s.ns_attr) {
              kv.second = std::move(v);
              return Flow::kNormal;
            }
          }
          attrs.emplace_back(Value::String(s.ns_attr), std::move(v));
          return Flow::kNormal;
        }
        GL_RETURN_IF_ERROR(Assign(*s.expr, s.targets, v, *scope));
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetBlock: {
        std::string captured;
        GL_ASSIGN_OR_RETURN(Flow f, ExecBody(s.body, scope, captured));
        (void)f;
        Value v = Value::String(std::move(captured));
        if (s.filter) {
          GL_ASSIGN_OR_RETURN(v, EvalFilterChain(*s.filter, std::move(v), scope));
        }
        scope->Set(s.targets[0], std::move(v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro: {
        CallableData data;
        data.kind = CallableData::Kind::kMacro;
        data.name = s.macro->name;
        data.macro = s.macro.get();
        // The defining scope will hold the macro itself, so the macro refers to it weakly
        // (through weak_closures_) rather than owning it: no reference cycle (see CallMacro).
        weak_closures_[s.macro.get()] = scope;
        scope->Set(s.macro->name, Value::Callable(std::move(data)));
        return Flow::kNormal;
      }
      case Stmt::Kind::kCallBlock: {
        CallableData caller;
        caller.kind = CallableData::Kind::kMacro;
        caller.name = "caller";
        caller.macro = s.macro.get();
        caller.closure = scope;
        GL_ASSIGN_OR_RETURN(Value v, EvalCall(*s.expr, scope, Value::Callable(std::move(caller))));
        GL_RETURN_IF_ERROR(Append(out, v.Str(), s.line, s.column));
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        std::string captured;
        GL_ASSIGN_OR_RETURN(Flow f, ExecBody(s.body, scope, captured));
        (void)f;
        GL_ASSIGN_OR_RETURN(Value v,
                            EvalFilterChain(*s.filter, Value::String(std::move(captured)), scope));
        GL_RETURN_IF_ERROR(Append(out, v.Str(), s.line, s.column));
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kScope:
        return ExecBody(s.body, scope, out);
      case Stmt::Kind::kWith: {
        std::vector<Value> values;
        for (const auto& c : s.conditions) {
          GL_ASSIGN_OR_RETURN(Value v, Eval(*c, scope));
          values.push_back(std::move(v));
        }
        auto inner = std::make_shared<Scope>(scope);
        for (size_t i = 0; i < values.size(); ++i) inner->Set(s.targets[i], std::move(values[i]));
        return ExecBody(s.body, inner, out);
      }
    }
    return Flow::kNormal;
  }

  Status Assign(const Expr& at, const std::vector<std::string>& targets, const Value& v,
                Scope& scope) {
    if (targets.size() == 1) {
      scope.Set(targets[0], v);
      return Status::Ok();
    }
    Result<ValueList> items = Iterate(v);
    if (!items.ok()) return Located(at, items.status());
    if (items->size() != targets.size()) {
      return Err(at, items->size() > targets.size() ? "too many values to unpack (expected " +
                                                          std::to_string(targets.size()) + ")"
                                                    : "not enough values to unpack (expected " +
                                                          std::to_string(targets.size()) + ")");
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.Set(targets[i], (*items)[i]);
    return Status::Ok();
  }

  Result<Flow> ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    GL_ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr, scope));
    // An Undefined iterable loops zero times, as in Jinja2.
    Result<ValueList> items_r = Iterate(iterable);
    if (!items_r.ok()) return Located(*s.expr, items_r.status());
    ValueList items = std::move(items_r).value();
    if (s.filter) {
      ValueList kept;
      for (const Value& item : items) {
        if (++iterations_ > options_.max_loop_iterations) return LoopLimit(*s.expr);
        auto iter_scope = std::make_shared<Scope>(scope);
        GL_RETURN_IF_ERROR(Assign(*s.expr, s.targets, item, *iter_scope));
        GL_ASSIGN_OR_RETURN(Value c, Eval(*s.filter, iter_scope));
        if (c.Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      if (++iterations_ > options_.max_loop_iterations) return LoopLimit(*s.expr);
      auto iter_scope = std::make_shared<Scope>(scope);
      GL_RETURN_IF_ERROR(Assign(*s.expr, s.targets, items[static_cast<size_t>(i)], *iter_scope));
      ValueDict loop;
      loop.reserve(12);
      auto put = [&](const char* k, Value v) { loop.emplace_back(Value::String(k), std::move(v)); };
      put("index", Value::Int(i + 1));
      put("index0", Value::Int(i));
      put("revindex", Value::Int(n - i));
      put("revindex0", Value::Int(n - i - 1));
      put("first", Value::Bool(i == 0));
      put("last", Value::Bool(i == n - 1));
      put("length", Value::Int(n));
      put("depth", Value::Int(1));
      put("depth0", Value::Int(0));
      put("previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                            : Value::Undefined("there is no previous item"));
      put("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)]
                                : Value::Undefined("there is no next item"));
      CallableData cycle;
      cycle.kind = CallableData::Kind::kLoopCycle;
      cycle.name = "cycle";
      cycle.loop_index0 = i;
      put("cycle", Value::Callable(std::move(cycle)));
      iter_scope->Set("loop", Value::Dict(std::move(loop)));
      GL_ASSIGN_OR_RETURN(Flow f, ExecBody(s.body, iter_scope, out));
      if (f == Flow::kBreak) break;
    }
    if (n == 0) {
      GL_ASSIGN_OR_RETURN(Flow f, ExecBody(s.else_body, scope, out));
      (void)f;
    }
    return Flow::kNormal;
  }

  Status LoopLimit(const Expr& e) const {
    return Status(StatusCode::kResourceExhausted,
                  "template error at line " + std::to_string(e.line) + ": more than " +
                      std::to_string(options_.max_loop_iterations) + " loop iterations");
  }

  // ---- expressions ----
  Result<Value> Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
    switch (e.kind) {
      case Expr::Kind::kConst:
        return e.value;
      case Expr::Kind::kName: {
        const Value* v = scope->Lookup(e.name);
        if (v != nullptr) return *v;
        if (IsGlobalFunction(e.name)) {
          CallableData d;
          d.kind = CallableData::Kind::kBuiltin;
          d.name = e.name;
          return Value::Callable(std::move(d));
        }
        return Value::Undefined("'" + e.name + "' is undefined");
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        ValueList items;
        for (const auto& c : e.children) {
          GL_ASSIGN_OR_RETURN(Value v, Eval(*c, scope));
          items.push_back(std::move(v));
        }
        Value list = Value::List(std::move(items), e.kind == Expr::Kind::kTuple);
        GL_RETURN_IF_ERROR(CheckSize(e, list));
        return list;
      }
      case Expr::Kind::kDict: {
        ValueDict items;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          GL_ASSIGN_OR_RETURN(Value k, Eval(*e.children[i], scope));
          GL_ASSIGN_OR_RETURN(Value v, Eval(*e.children[i + 1], scope));
          if (k.is_list() && !k.is_tuple()) return Err(e, "unhashable type: 'list'");
          if (k.is_dict()) return Err(e, "unhashable type: 'dict'");
          bool replaced = false;
          for (auto& kv : items) {
            if (Equals(kv.first, k)) {
              kv.second = v;
              replaced = true;
            }
          }
          if (!replaced) items.emplace_back(std::move(k), std::move(v));
        }
        Value dict = Value::Dict(std::move(items));
        GL_RETURN_IF_ERROR(CheckSize(e, dict));
        return dict;
      }
      case Expr::Kind::kGetAttr: {
        GL_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0], scope));
        return GetAttr(e, obj, e.name);
      }
      case Expr::Kind::kGetItem: {
        GL_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0], scope));
        GL_ASSIGN_OR_RETURN(Value key, Eval(*e.children[1], scope));
        return GetItem(e, obj, key);
      }
      case Expr::Kind::kSlice:
        return EvalSlice(e, scope);
      case Expr::Kind::kCall:
        return EvalCall(e, scope, Value());
      case Expr::Kind::kFilter: {
        GL_ASSIGN_OR_RETURN(Value operand, Eval(*e.children[0], scope));
        return EvalFilter(e, std::move(operand), scope);
      }
      case Expr::Kind::kTest: {
        GL_ASSIGN_OR_RETURN(Value operand, Eval(*e.children[0], scope));
        GL_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1, scope));
        Result<bool> r = ApplyTest(ctx_, e.name, operand, args);
        if (!r.ok()) return Located(e, r.status());
        return Value::Bool(*r);
      }
      case Expr::Kind::kNeg:
      case Expr::Kind::kPos: {
        GL_ASSIGN_OR_RETURN(Value v, Eval(*e.children[0], scope));
        if (v.is_undefined()) return Located(e, UndefinedError(v));
        if (!v.is_number())
          return Err(e, "bad operand type for unary " +
                            std::string(e.kind == Expr::Kind::kNeg ? "-" : "+") + ": '" +
                            v.TypeName() + "'");
        if (e.kind == Expr::Kind::kPos) return v.is_bool() ? Value::Int(v.as_int()) : v;
        if (v.is_float()) return Value::Float(-v.as_float());
        if (v.as_int() == INT64_MIN) return Err(e, "integer overflow");
        return Value::Int(-v.as_int());
      }
      case Expr::Kind::kBinary: {
        GL_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0], scope));
        GL_ASSIGN_OR_RETURN(Value b, Eval(*e.children[1], scope));
        GL_ASSIGN_OR_RETURN(Value r, Binary(e, a, b));
        GL_RETURN_IF_ERROR(CheckSize(e, r));
        return r;
      }
      case Expr::Kind::kCompare: {
        GL_ASSIGN_OR_RETURN(Value left, Eval(*e.children[0], scope));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          GL_ASSIGN_OR_RETURN(Value right, Eval(*e.children[i + 1], scope));
          GL_ASSIGN_OR_RETURN(bool ok, Compare(e, e.ops[i], left, right));
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kAnd: {
        GL_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0], scope));
        if (!a.Truthy()) return a;
        return Eval(*e.children[1], scope);
      }
      case Expr::Kind::kOr: {
        GL_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0], scope));
        if (a.Truthy()) return a;
        return Eval(*e.children[1], scope);
      }
      case Expr::Kind::kNot: {
        GL_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0], scope));
        return Value::Bool(!a.Truthy());
      }
      case Expr::Kind::kCondExpr: {
        GL_ASSIGN_OR_RETURN(Value c, Eval(*e.children[1], scope));
        if (c.Truthy()) return Eval(*e.children[0], scope);
        if (e.children[2]) return Eval(*e.children[2], scope);
        return Value::Undefined(
            "the inline if-expression evaluated to false and no else section was defined.");
      }
    }
    return Err(e, "unknown expression");
  }

  Result<Args> EvalArgs(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
    Args args;
    for (size_t i = first; i < e.children.size(); ++i) {
      GL_ASSIGN_OR_RETURN(Value v, Eval(*e.children[i], scope));
      args.pos.push_back(std::move(v));
    }
    for (const auto& [k, x] : e.kwargs) {
      GL_ASSIGN_OR_RETURN(Value v, Eval(*x, scope));
      args.kw.emplace_back(k, std::move(v));
    }
    return args;
  }

  Result<Value> EvalFilter(const Expr& e, Value operand, const std::shared_ptr<Scope>& scope) {
    GL_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1, scope));
    Result<Value> r = ApplyFilter(ctx_, e.name, operand, args);
    if (!r.ok()) return Located(e, r.status());
    GL_RETURN_IF_ERROR(CheckSize(e, *r));
    return r;
  }

  // A filter chain whose innermost operand is null gets `input` there.
  Result<Value> EvalFilterChain(const Expr& e, Value input, const std::shared_ptr<Scope>& scope) {
    Value operand = std::move(input);
    if (e.children[0]) {
      GL_ASSIGN_OR_RETURN(operand, EvalFilterChain(*e.children[0], std::move(operand), scope));
    }
    return EvalFilter(e, std::move(operand), scope);
  }

  Result<Value> GetAttr(const Expr& e, const Value& obj, const std::string& name) {
    if (obj.is_undefined()) return Located(e, UndefinedError(obj));
    if (HasMethod(obj, name)) {
      CallableData d;
      d.kind = CallableData::Kind::kMethod;
      d.name = name;
      d.self = std::make_shared<const Value>(obj);
      return Value::Callable(std::move(d));
    }
    if (obj.is_dict() || obj.is_namespace()) {
      if (const Value* v = obj.Find(name)) return *v;
    }
    return Value::Undefined("'" + obj.TypeName() + " object' has no attribute '" + name + "'");
  }

  Result<Value> GetItem(const Expr& e, const Value& obj, const Value& key) {
    if (obj.is_undefined()) return Located(e, UndefinedError(obj));
    if (obj.is_dict()) {
      if (const Value* v = obj.Find(key)) return *v;
    } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
      int64_t i = key.as_int();
      if (obj.is_list()) {
        const int64_t n = static_cast<int64_t>(obj.as_list().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
      } else {
        std::vector<std::string> cps = CodePoints(obj.as_string());
        const int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value::String(cps[static_cast<size_t>(i)]);
      }
      return Value::Undefined("'" + obj.TypeName() + " object' has no element " + key.Repr());
    }
    if (key.is_string()) return GetAttr(e, obj, key.as_string());
    return Value::Undefined("'" + obj.TypeName() + " object' has no element " + key.Repr());
  }

  Result<Value> EvalSlice(const Expr& e, const std::shared_ptr<Scope>& scope) {
    GL_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0], scope));
    std::optional<int64_t> bounds[3];
    for (int k = 0; k < 3; ++k) {
      if (!e.children[k + 1]) continue;
      GL_ASSIGN_OR_RETURN(Value b, Eval(*e.children[k + 1], scope));
      if (b.is_none()) continue;
      if (!(b.is_int() || b.is_bool())) {
        return Err(e, "slice indices must be integers or None");
      }
      bounds[k] = b.as_int();
    }
    if (obj.is_undefined()) return Located(e, UndefinedError(obj));
    const int64_t step = bounds[2].value_or(1);
    if (step == 0) return Err(e, "slice step cannot be zero");
    std::vector<std::string> cps;
    int64_t n = 0;
    if (obj.is_list()) {
      n = static_cast<int64_t>(obj.as_list().size());
    } else if (obj.is_string()) {
      cps = CodePoints(obj.as_string());
      n = static_cast<int64_t>(cps.size());
    } else {
      return Err(e, "'" + obj.TypeName() + "' object is not subscriptable");
    }
    // Python's slice.indices().
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v;
      if (x < 0) {
        x += n;
        if (x < 0) x = step < 0 ? -1 : 0;
      } else if (x >= n) {
        x = step < 0 ? n - 1 : n;
      }
      return x;
    };
    const int64_t start = clamp(bounds[0], step < 0 ? n - 1 : 0);
    const int64_t stop = clamp(bounds[1], step < 0 ? -1 : n);
    ValueList items;
    std::string text;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      if (obj.is_list()) {
        items.push_back(obj.as_list()[static_cast<size_t>(i)]);
      } else {
        text += cps[static_cast<size_t>(i)];
      }
      if (__builtin_add_overflow(i, step, &i)) break;
    }
    if (obj.is_list()) return Value::List(std::move(items), obj.is_tuple());
    return Value::String(std::move(text));
  }

  Result<Value> Binary(const Expr& e, const Value& a, const Value& b) {
    Result<Value> r = BinaryOp(e.name, a, b, options_);
    if (!r.ok()) return Located(e, r.status());
    return r;
  }

  Result<bool> Compare(const Expr& e, const std::string& op, const Value& a, const Value& b) {
    Result<bool> r = CompareOp(op, a, b);
    if (!r.ok()) return Located(e, r.status());
    return r;
  }

  Result<Value> EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope, Value caller) {
    GL_ASSIGN_OR_RETURN(Value callee, Eval(*e.children[0], scope));
    GL_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1, scope));
    if (!caller.is_undefined()) args.kw.emplace_back("caller", std::move(caller));
    if (callee.is_undefined()) return Located(e, UndefinedError(callee));
    if (!callee.is_callable()) return Err(e, "'" + callee.TypeName() + "' object is not callable");
    const CallableData& c = callee.as_callable();
    Result<Value> r = Value();
    switch (c.kind) {
      case CallableData::Kind::kMacro:
        return CallMacro(e, c, args);
      case CallableData::Kind::kBuiltin:
        if (c.name == "namespace") {
          r = CallGlobal(ctx_, c.name, args);
          if (r.ok()) namespaces_.push_back(*r);
        } else {
          r = CallGlobal(ctx_, c.name, args);
        }
        break;
      case CallableData::Kind::kMethod:
        r = CallMethod(ctx_, *c.self, c.name, args);
        break;
      case CallableData::Kind::kLoopCycle:
        if (args.pos.empty()) return Err(e, "no items for cycling given");
        return args.pos[static_cast<size_t>(c.loop_index0) % args.pos.size()];
    }
    if (!r.ok()) return Located(e, r.status());
    GL_RETURN_IF_ERROR(CheckSize(e, *r));
    return r;
  }

  Result<Value> CallMacro(const Expr& e, const CallableData& c, const Args& args) {
    const MacroNode& m = *c.macro;
    if (call_depth_ >= options_.max_call_depth) {
      return Status(StatusCode::kResourceExhausted, "template error at line " +
                                                        std::to_string(e.line) +
                                                        ": macro calls nested deeper than " +
                                                        std::to_string(options_.max_call_depth));
    }
    std::shared_ptr<Scope> parent = c.closure;
    if (!parent) {
      auto it = weak_closures_.find(c.macro);
      if (it != weak_closures_.end()) parent = it->second.lock();
      if (!parent) parent = root_;
    }
    auto scope = std::make_shared<Scope>(parent);
    ValueList varargs;
    std::vector<bool> bound(m.params.size(), false);
    for (size_t i = 0; i < args.pos.size(); ++i) {
      if (i < m.params.size()) {
        scope->Set(m.params[i], args.pos[i]);
        bound[i] = true;
      } else if (m.uses_varargs) {
        varargs.push_back(args.pos[i]);
      } else {
        return Err(e, "macro '" + m.name + "' takes not more than " +
                          std::to_string(m.params.size()) + " argument(s)");
      }
    }
    ValueDict kwargs;
    bool has_caller = false;
    for (const auto& [k, v] : args.kw) {
      size_t idx = m.params.size();
      for (size_t i = 0; i < m.params.size(); ++i) {
        if (m.params[i] == k) idx = i;
      }
      if (idx < m.params.size()) {
        if (bound[idx])
          return Err(e, "macro '" + m.name + "' got multiple values for argument '" + k + "'");
        scope->Set(k, v);
        bound[idx] = true;
      } else if (k == "caller" && m.uses_caller) {
        scope->Set("caller", v);
        has_caller = true;
      } else if (m.uses_kwargs) {
        kwargs.emplace_back(Value::String(k), v);
      } else {
        return Err(e, "macro '" + m.name + "' takes no keyword argument '" + k + "'");
      }
    }
    for (size_t i = 0; i < m.params.size(); ++i) {
      if (bound[i]) continue;
      if (m.defaults[i]) {
        GL_ASSIGN_OR_RETURN(Value d, Eval(*m.defaults[i], scope));
        scope->Set(m.params[i], std::move(d));
      } else {
        scope->Set(m.params[i],
                   Value::Undefined("parameter '" + m.params[i] + "' was not provided"));
      }
    }
    if (m.uses_varargs) scope->Set("varargs", Value::List(std::move(varargs), true));
    if (m.uses_kwargs) scope->Set("kwargs", Value::Dict(std::move(kwargs)));
    if (m.uses_caller && !has_caller) scope->Set("caller", Value::Undefined("No caller defined"));
    std::string out;
    ++call_depth_;
    Result<Flow> f = ExecBody(m.body, scope, out);
    --call_depth_;
    if (!f.ok()) return f.status();
    return Value::String(std::move(out));
  }

  RenderOptions options_;
  BuiltinContext ctx_;
  std::shared_ptr<Scope> root_;
  std::map<const MacroNode*, std::weak_ptr<Scope>> weak_closures_;
  std::vector<Value> namespaces_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
};

}  // namespace

Result<Template> Template::Parse(std::string_view source) {
  // Python reads templates as UTF-8 text and refuses anything else; so do we.
  if (!IsValidUtf8(source)) {
    return InvalidArgumentError("template is not valid UTF-8 (first bad byte at offset " +
                                std::to_string(FirstInvalidUtf8Offset(source)) + ")");
  }
  GL_ASSIGN_OR_RETURN(Body body, ParseTemplate(source));
  Template t;
  t.body_ = std::make_shared<const Body>(std::move(body));
  return t;
}

Result<std::string> Template::Render(const Value& context, const RenderOptions& options) const {
  Interpreter interp(options);
  return interp.Run(*body_, context);
}

}  // namespace gemma_local::jinja
