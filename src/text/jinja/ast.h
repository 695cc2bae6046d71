// The Jinja template AST. One generic node type per layer (expressions, statements) keeps the
// parser and interpreter short; the meaning of each field per kind is documented below.
// Nodes are owned by their parent through unique_ptr; the Template owns the root.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace gemma_local::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kList,      // children = items
    kTuple,     // children = items
    kDict,      // children = k0, v0, k1, v1, ...
    kGetAttr,   // children[0] = object, name = attribute
    kGetItem,   // children[0] = object, children[1] = key
    kSlice,     // children[0] = object, children[1..3] = start/stop/step (null when omitted)
    kCall,      // children[0] = callee, children[1..] = positional args, kwargs
    kFilter,    // children[0] = operand (null in filter blocks), name, args from children[1..]
    kTest,      // children[0] = operand, name, args from children[1..]
    kNeg,       // children[0]
    kPos,       // children[0]
    kBinary,    // name = "+", "-", "*", "/", "//", "%", "**", "~"; children[0..1]
    kCompare,   // children[0..n], ops[n-1] in "==", "!=", "<", "<=", ">", ">=", "in", "notin"
    kAnd,       // children[0..1]
    kOr,        // children[0..1]
    kNot,       // children[0]
    kCondExpr,  // children[0] = then, children[1] = condition, children[2] = else (may be null)
  };
  Kind kind = Kind::kConst;
  int line = 0;
  int column = 0;
  int depth = 1;  // height of this subtree (the parser caps it so evaluation cannot overflow)
  Value value;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

// A macro, or the body of a call block (then named "caller").
struct MacroNode {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // parallel to params; null when the parameter has no default
  Body body;
  bool uses_varargs = false;  // the body mentions `varargs`
  bool uses_kwargs = false;   // the body mentions `kwargs`
  bool uses_caller = false;   // the body mentions `caller`
};

struct Stmt {
  enum class Kind {
    kData,         // text
    kPrint,        // expr
    kIf,           // conditions[i] -> bodies[i]; else_body
    kFor,          // targets, expr (iterable), filter (may be null), body, else_body
    kSet,          // targets (names) or ns_name+ns_attr; expr
    kSetBlock,     // targets[0]; body; filter (chain with null operand, may be null)
    kMacro,        // macro
    kCallBlock,    // expr (the call), macro (caller)
    kFilterBlock,  // filter (chain with null operand), body
    kBreak,
    kContinue,
    kScope,  // body rendered in place (the {% generation %} block)
    kWith,   // targets[i] = conditions[i] (evaluated outside), body in a child scope
  };
  Kind kind = Kind::kData;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<std::string> targets;
  std::string ns_name;
  std::string ns_attr;
  std::unique_ptr<MacroNode> macro;
};

}  // namespace gemma_local::jinja
