#include "text/jinja/parser.h"

#include <set>

#include "text/jinja/lexer.h"

namespace gemma_local::jinja {

namespace {

constexpr int kMaxNesting = 128;
constexpr int kMaxExprDepth = 256;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<Body> ParseAll() {
    std::string which;
    GL_ASSIGN_OR_RETURN(Body body, ParseBody({}, &which));
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void Advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool IsOp(const char* op) const { return Cur().type == Token::Type::kOp && Cur().text == op; }
  bool IsName(const char* n) const { return Cur().type == Token::Type::kName && Cur().text == n; }

  Status ErrorAt(const Token& t, const std::string& msg) const {
    return InvalidArgumentError("template syntax error at line " + std::to_string(t.line) +
                                ", column " + std::to_string(t.column) + ": " + msg);
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Token::Type::kEof:
        return "end of template";
      case Token::Type::kBlockEnd:
        return "end of statement block";
      case Token::Type::kVarEnd:
        return "end of print statement";
      case Token::Type::kData:
        return "template data";
      default:
        return "'" + t.text + "'";
    }
  }
  Status Expect(const char* op) {
    if (!IsOp(op))
      return ErrorAt(Cur(), std::string("expected '") + op + "', got " + Describe(Cur()));
    Advance();
    return Status::Ok();
  }
  Result<std::string> ExpectName() {
    if (Cur().type != Token::Type::kName)
      return ErrorAt(Cur(), "expected name, got " + Describe(Cur()));
    std::string n = Cur().text;
    Advance();
    return n;
  }
  Status ExpectBlockEnd() {
    if (Cur().type != Token::Type::kBlockEnd) {
      return ErrorAt(Cur(), "expected end of statement block, got " + Describe(Cur()));
    }
    Advance();
    return Status::Ok();
  }

  // Sets n.depth from its children; an error when the tree grows too tall. Iteratively built
  // chains (a+b+c..., x.a.b..., x|f|g...) call this so that neither evaluation nor destruction
  // of the AST can recurse without bound.
  Status Grow(Expr& n) const {
    int d = 0;
    for (const auto& c : n.children) {
      if (c) d = std::max(d, c->depth);
    }
    for (const auto& kv : n.kwargs) d = std::max(d, kv.second->depth);
    n.depth = d + 1;
    if (n.depth > kMaxExprDepth) {
      return InvalidArgumentError("template syntax error at line " + std::to_string(n.line) +
                                  ", column " + std::to_string(n.column) +
                                  ": expression nested too deeply");
    }
    return Status::Ok();
  }

  ExprPtr NewExpr(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements ----
  // Parses statements until `{% <name>` with name in `ends` (consumed, name stored in *which) or
  // end of input (only allowed when `ends` is empty).
  Result<Body> ParseBody(const std::set<std::string>& ends, std::string* which) {
    if (++depth_ > kMaxNesting) return ErrorAt(Cur(), "template nested too deeply");
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == Token::Type::kEof) {
        if (!ends.empty()) {
          return ErrorAt(t, "unexpected end of template, expected '" + *ends.begin() + "'");
        }
        break;
      }
      if (t.type == Token::Type::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kData;
        s->text = t.text;
        body.push_back(std::move(s));
        Advance();
        continue;
      }
      if (t.type == Token::Type::kVarBegin) {
        Advance();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kPrint;
        s->line = t.line;
        s->column = t.column;
        GL_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
        if (Cur().type != Token::Type::kVarEnd) {
          return ErrorAt(Cur(), "expected end of print statement, got " + Describe(Cur()));
        }
        Advance();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type != Token::Type::kBlockBegin) return ErrorAt(t, "unexpected " + Describe(t));
      const Token& name = Peek();
      if (name.type != Token::Type::kName) return ErrorAt(name, "tag name expected");
      if (ends.count(name.text) != 0) {
        *which = name.text;
        Advance();
        Advance();
        break;
      }
      Advance();
      GL_ASSIGN_OR_RETURN(auto stmt, ParseStatement());
      body.push_back(std::move(stmt));
    }
    --depth_;
    return body;
  }

  Result<std::unique_ptr<Stmt>> ParseStatement() {
    const Token tag = Cur();
    auto s = std::make_unique<Stmt>();
    s->line = tag.line;
    s->column = tag.column;
    Advance();
    const std::string& n = tag.text;
    std::string which;
    if (n == "if") {
      s->kind = Stmt::Kind::kIf;
      while (true) {
        GL_ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(true));
        GL_RETURN_IF_ERROR(ExpectBlockEnd());
        GL_ASSIGN_OR_RETURN(Body b, ParseBody({"elif", "else", "endif"}, &which));
        s->conditions.push_back(std::move(cond));
        s->bodies.push_back(std::move(b));
        if (which == "elif") continue;
        if (which == "else") {
          GL_RETURN_IF_ERROR(ExpectBlockEnd());
          GL_ASSIGN_OR_RETURN(s->else_body, ParseBody({"endif"}, &which));
        }
        break;
      }
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "for") {
      s->kind = Stmt::Kind::kFor;
      const bool paren = IsOp("(");
      if (paren) Advance();
      while (true) {
        GL_ASSIGN_OR_RETURN(std::string target, ExpectName());
        s->targets.push_back(target);
        if (!IsOp(",")) break;
        Advance();
        if (IsName("in") || IsOp(")")) break;
      }
      if (paren) GL_RETURN_IF_ERROR(Expect(")"));
      if (!IsName("in")) return ErrorAt(Cur(), "expected 'in', got " + Describe(Cur()));
      Advance();
      GL_ASSIGN_OR_RETURN(s->expr, ParseTuple(false));
      if (IsName("if")) {
        Advance();
        GL_ASSIGN_OR_RETURN(s->filter, ParseExpression(true));
      }
      if (IsName("recursive")) return ErrorAt(Cur(), "recursive for loops are not supported");
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      ++loop_depth_;
      Result<Body> loop_body = ParseBody({"endfor", "else"}, &which);
      --loop_depth_;
      if (!loop_body.ok()) return loop_body.status();
      s->body = std::move(loop_body).value();
      if (which == "else") {
        GL_RETURN_IF_ERROR(ExpectBlockEnd());
        GL_ASSIGN_OR_RETURN(s->else_body, ParseBody({"endfor"}, &which));
      }
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "set") {
      GL_ASSIGN_OR_RETURN(std::string first, ExpectName());
      if (IsOp(".")) {
        Advance();
        s->kind = Stmt::Kind::kSet;
        s->ns_name = first;
        GL_ASSIGN_OR_RETURN(s->ns_attr, ExpectName());
        GL_RETURN_IF_ERROR(Expect("="));
        GL_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
        GL_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
      s->targets.push_back(first);
      while (IsOp(",")) {
        Advance();
        GL_ASSIGN_OR_RETURN(std::string t, ExpectName());
        s->targets.push_back(t);
      }
      if (IsOp("=")) {
        Advance();
        s->kind = Stmt::Kind::kSet;
        GL_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
        GL_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
      if (s->targets.size() != 1) return ErrorAt(Cur(), "expected '='");
      s->kind = Stmt::Kind::kSetBlock;
      if (IsOp("|")) {
        Advance();
        GL_ASSIGN_OR_RETURN(s->filter, ParseFilterChain(nullptr, false));
      }
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_ASSIGN_OR_RETURN(s->body, ParseBody({"endset"}, &which));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->macro = std::make_unique<MacroNode>();
      GL_ASSIGN_OR_RETURN(s->macro->name, ExpectName());
      GL_RETURN_IF_ERROR(ParseSignature(*s->macro));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_RETURN_IF_ERROR(ParseMacroBody(*s->macro, "endmacro"));
      return s;
    }
    if (n == "call") {
      s->kind = Stmt::Kind::kCallBlock;
      s->macro = std::make_unique<MacroNode>();
      s->macro->name = "caller";
      if (IsOp("(")) GL_RETURN_IF_ERROR(ParseSignature(*s->macro));
      GL_ASSIGN_OR_RETURN(s->expr, ParseExpression(true));
      if (s->expr->kind != Expr::Kind::kCall) return ErrorAt(tag, "expected call");
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_RETURN_IF_ERROR(ParseMacroBody(*s->macro, "endcall"));
      return s;
    }
    if (n == "filter") {
      s->kind = Stmt::Kind::kFilterBlock;
      GL_ASSIGN_OR_RETURN(s->filter, ParseFilterChain(nullptr, false));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_ASSIGN_OR_RETURN(s->body, ParseBody({"endfilter"}, &which));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "with") {
      s->kind = Stmt::Kind::kWith;
      while (Cur().type != Token::Type::kBlockEnd) {
        if (!s->targets.empty()) GL_RETURN_IF_ERROR(Expect(","));
        GL_ASSIGN_OR_RETURN(std::string target, ExpectName());
        GL_RETURN_IF_ERROR(Expect("="));
        GL_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        s->targets.push_back(std::move(target));
        s->conditions.push_back(std::move(value));
      }
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_ASSIGN_OR_RETURN(s->body, ParseBody({"endwith"}, &which));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "generation") {  // transformers' AssistantTracker extension: renders its body
      s->kind = Stmt::Kind::kScope;
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      GL_ASSIGN_OR_RETURN(s->body, ParseBody({"endgeneration"}, &which));
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) return ErrorAt(tag, "'" + n + "' outside of a loop");
      s->kind = n == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      GL_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    return ErrorAt(tag, "encountered unknown tag '" + n + "'");
  }

  Status ParseSignature(MacroNode& m) {
    GL_RETURN_IF_ERROR(Expect("("));
    while (!IsOp(")")) {
      if (!m.params.empty()) GL_RETURN_IF_ERROR(Expect(","));
      if (IsOp(")")) break;
      GL_ASSIGN_OR_RETURN(std::string p, ExpectName());
      m.params.push_back(p);
      ExprPtr def;
      if (IsOp("=")) {
        Advance();
        GL_ASSIGN_OR_RETURN(def, ParseExpression(true));
      } else if (!m.defaults.empty() && m.defaults.back() != nullptr) {
        return ErrorAt(Cur(), "non-default argument follows default argument");
      }
      m.defaults.push_back(std::move(def));
    }
    return Expect(")");
  }

  Status ParseMacroBody(MacroNode& m, const char* end) {
    std::set<std::string> names;
    names_stack_.push_back(&names);
    const int saved_loop = loop_depth_;
    loop_depth_ = 0;
    std::string which;
    Result<Body> body = ParseBody({end}, &which);
    loop_depth_ = saved_loop;
    names_stack_.pop_back();
    if (!body.ok()) return body.status();
    m.body = std::move(body).value();
    m.uses_varargs = names.count("varargs") != 0;
    m.uses_kwargs = names.count("kwargs") != 0;
    m.uses_caller = names.count("caller") != 0;
    if (!names_stack_.empty()) names_stack_.back()->insert(names.begin(), names.end());
    return ExpectBlockEnd();
  }

  // ---- expressions ----
  Result<ExprPtr> ParseTuple(bool with_condexpr) {
    const Token start = Cur();
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!IsOp(",")) break;
        Advance();
        saw_comma = true;
      }
      if (Cur().type == Token::Type::kVarEnd || Cur().type == Token::Type::kBlockEnd ||
          IsName("if") || IsName("recursive") || IsOp(")") || IsOp("=")) {
        if (items.empty()) return ErrorAt(Cur(), "expected an expression, got " + Describe(Cur()));
        break;
      }
      GL_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(with_condexpr));
      items.push_back(std::move(e));
    }
    if (!saw_comma) return std::move(items[0]);
    ExprPtr t = NewExpr(Expr::Kind::kTuple, start);
    t->children = std::move(items);
    return t;
  }

  Result<ExprPtr> ParseExpression(bool with_condexpr) {
    if (++depth_ > kMaxNesting) return ErrorAt(Cur(), "expression nested too deeply");
    Result<ExprPtr> r = with_condexpr ? ParseCondExpr() : ParseOr();
    --depth_;
    return r;
  }

  Result<ExprPtr> ParseCondExpr() {
    GL_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    while (IsName("if")) {
      const Token at = Cur();
      Advance();
      GL_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr otherwise;
      if (IsName("else")) {
        Advance();
        GL_ASSIGN_OR_RETURN(otherwise, ParseExpression(true));
      }
      ExprPtr c = NewExpr(Expr::Kind::kCondExpr, at);
      c->children.push_back(std::move(e));
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(otherwise));
      GL_RETURN_IF_ERROR(Grow(*c));
      e = std::move(c);
    }
    return e;
  }

  Result<ExprPtr> ParseOr() {
    GL_ASSIGN_OR_RETURN(ExprPtr e, ParseAnd());
    while (IsName("or")) {
      const Token at = Cur();
      Advance();
      GL_ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
      ExprPtr n = NewExpr(Expr::Kind::kOr, at);
      n->children.push_back(std::move(e));
      n->children.push_back(std::move(r));
      GL_RETURN_IF_ERROR(Grow(*n));
      e = std::move(n);
    }
    return e;
  }

  Result<ExprPtr> ParseAnd() {
    GL_ASSIGN_OR_RETURN(ExprPtr e, ParseNot());
    while (IsName("and")) {
      const Token at = Cur();
      Advance();
      GL_ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
      ExprPtr n = NewExpr(Expr::Kind::kAnd, at);
      n->children.push_back(std::move(e));
      n->children.push_back(std::move(r));
      GL_RETURN_IF_ERROR(Grow(*n));
      e = std::move(n);
    }
    return e;
  }

  Result<ExprPtr> ParseNot() {
    if (IsName("not")) {
      const Token at = Cur();
      Advance();
      if (++depth_ > kMaxNesting) return ErrorAt(at, "expression nested too deeply");
      GL_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      --depth_;
      ExprPtr n = NewExpr(Expr::Kind::kNot, at);
      n->children.push_back(std::move(inner));
      return n;
    }
    return ParseCompare();
  }

  Result<ExprPtr> ParseCompare() {
    const Token at = Cur();
    GL_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == Token::Type::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" ||
           Cur().text == ">" || Cur().text == ">=")) {
        op = Cur().text;
        Advance();
      } else if (IsName("in")) {
        op = "in";
        Advance();
      } else if (IsName("not") && Peek().type == Token::Type::kName && Peek().text == "in") {
        op = "notin";
        Advance();
        Advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = NewExpr(Expr::Kind::kCompare, at);
        cmp->children.push_back(std::move(first));
      }
      GL_ASSIGN_OR_RETURN(ExprPtr rhs, ParseMath1());
      cmp->children.push_back(std::move(rhs));
      cmp->ops.push_back(op);
    }
    if (cmp) GL_RETURN_IF_ERROR(Grow(*cmp));
    return cmp ? std::move(cmp) : std::move(first);
  }

  using SubParser = Result<ExprPtr> (Parser::*)();
  Result<ExprPtr> ParseBinaryLevel(SubParser next, std::initializer_list<const char*> ops) {
    GL_ASSIGN_OR_RETURN(ExprPtr e, (this->*next)());
    while (true) {
      const char* found = nullptr;
      for (const char* op : ops) {
        if (IsOp(op)) found = op;
      }
      if (found == nullptr) break;
      const Token at = Cur();
      Advance();
      GL_ASSIGN_OR_RETURN(ExprPtr r, (this->*next)());
      ExprPtr n = NewExpr(Expr::Kind::kBinary, at);
      n->name = found;
      n->children.push_back(std::move(e));
      n->children.push_back(std::move(r));
      GL_RETURN_IF_ERROR(Grow(*n));
      e = std::move(n);
    }
    return e;
  }
  Result<ExprPtr> ParseMath1() { return ParseBinaryLevel(&Parser::ParseConcat, {"+", "-"}); }
  Result<ExprPtr> ParseConcat() { return ParseBinaryLevel(&Parser::ParseMath2, {"~"}); }
  Result<ExprPtr> ParseMath2() {
    return ParseBinaryLevel(&Parser::ParsePow, {"*", "/", "//", "%"});
  }
  Result<ExprPtr> ParsePow() { return ParseBinaryLevel(&Parser::ParseUnaryFiltered, {"**"}); }
  Result<ExprPtr> ParseUnaryFiltered() { return ParseUnary(true); }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    if (++depth_ > kMaxNesting) return ErrorAt(Cur(), "expression nested too deeply");
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const Token at = Cur();
      Advance();
      GL_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      node = NewExpr(at.text == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, at);
      node->children.push_back(std::move(inner));
    } else {
      GL_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    GL_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      GL_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    --depth_;
    return node;
  }

  Result<ExprPtr> ParsePrimary() {
    const Token t = Cur();
    switch (t.type) {
      case Token::Type::kName: {
        Advance();
        ExprPtr e = NewExpr(Expr::Kind::kConst, t);
        if (t.text == "true" || t.text == "True")
          e->value = Value::Bool(true);
        else if (t.text == "false" || t.text == "False")
          e->value = Value::Bool(false);
        else if (t.text == "none" || t.text == "None")
          e->value = Value::None();
        else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
          if (!names_stack_.empty()) names_stack_.back()->insert(t.text);
        }
        return e;
      }
      case Token::Type::kString: {
        std::string s;
        while (Cur().type == Token::Type::kString) {
          s += Cur().text;
          Advance();
        }
        ExprPtr e = NewExpr(Expr::Kind::kConst, t);
        e->value = Value::String(std::move(s));
        return e;
      }
      case Token::Type::kInt:
      case Token::Type::kFloat: {
        Advance();
        ExprPtr e = NewExpr(Expr::Kind::kConst, t);
        e->value =
            t.type == Token::Type::kInt ? Value::Int(t.int_value) : Value::Float(t.float_value);
        return e;
      }
      default:
        break;
    }
    if (IsOp("(")) {
      Advance();
      if (IsOp(")")) {
        Advance();
        return NewExpr(Expr::Kind::kTuple, t);
      }
      GL_ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(true));
      GL_RETURN_IF_ERROR(Expect(")"));
      return e;
    }
    if (IsOp("[") || IsOp("{")) {
      const bool is_list = IsOp("[");
      Advance();
      ExprPtr e = NewExpr(is_list ? Expr::Kind::kList : Expr::Kind::kDict, t);
      const char* close = is_list ? "]" : "}";
      while (!IsOp(close)) {
        if (!e->children.empty()) {
          GL_RETURN_IF_ERROR(Expect(","));
          if (IsOp(close)) break;
        }
        GL_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
        e->children.push_back(std::move(item));
        if (!is_list) {
          GL_RETURN_IF_ERROR(Expect(":"));
          GL_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
          e->children.push_back(std::move(v));
        }
      }
      Advance();
      return e;
    }
    return ErrorAt(t, "unexpected " + Describe(t));
  }

  Result<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const Token at = Cur();
      if (IsOp(".")) {
        Advance();
        if (Cur().type == Token::Type::kName) {
          ExprPtr n = NewExpr(Expr::Kind::kGetAttr, at);
          n->name = Cur().text;
          n->children.push_back(std::move(node));
          GL_RETURN_IF_ERROR(Grow(*n));
          node = std::move(n);
          Advance();
        } else if (Cur().type == Token::Type::kInt) {
          ExprPtr n = NewExpr(Expr::Kind::kGetItem, at);
          n->children.push_back(std::move(node));
          ExprPtr k = NewExpr(Expr::Kind::kConst, at);
          k->value = Value::Int(Cur().int_value);
          n->children.push_back(std::move(k));
          GL_RETURN_IF_ERROR(Grow(*n));
          node = std::move(n);
          Advance();
        } else {
          return ErrorAt(Cur(), "expected name or number after '.'");
        }
      } else if (IsOp("[")) {
        Advance();
        GL_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), at));
      } else if (IsOp("(")) {
        GL_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseSubscript(ExprPtr obj, const Token& at) {
    std::vector<ExprPtr> parts(3);
    bool is_slice = false;
    int idx = 0;
    while (!IsOp("]")) {
      if (IsOp(":")) {
        is_slice = true;
        if (++idx > 2) return ErrorAt(Cur(), "too many ':' in slice");
        Advance();
        continue;
      }
      if (parts[idx]) return ErrorAt(Cur(), "expected ']' , got " + Describe(Cur()));
      GL_ASSIGN_OR_RETURN(parts[idx], ParseTuple(true));
    }
    Advance();
    if (!is_slice) {
      if (!parts[0]) return ErrorAt(at, "expected subscript expression");
      ExprPtr n = NewExpr(Expr::Kind::kGetItem, at);
      n->children.push_back(std::move(obj));
      n->children.push_back(std::move(parts[0]));
      GL_RETURN_IF_ERROR(Grow(*n));
      return n;
    }
    ExprPtr n = NewExpr(Expr::Kind::kSlice, at);
    n->children.push_back(std::move(obj));
    for (auto& p : parts) n->children.push_back(std::move(p));
    GL_RETURN_IF_ERROR(Grow(*n));
    return n;
  }

  // Parses "(args)" into `call` (children from index 1, kwargs).
  Status ParseArgs(Expr& call) {
    GL_RETURN_IF_ERROR(Expect("("));
    bool first = true;
    while (!IsOp(")")) {
      if (!first) {
        GL_RETURN_IF_ERROR(Expect(","));
        if (IsOp(")")) break;
      }
      first = false;
      if (IsOp("*") || IsOp("**"))
        return ErrorAt(Cur(), "*args/**kwargs in calls are not supported");
      if (Cur().type == Token::Type::kName && Peek().type == Token::Type::kOp &&
          Peek().text == "=") {
        std::string key = Cur().text;
        Advance();
        Advance();
        GL_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        call.kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        if (!call.kwargs.empty()) {
          return ErrorAt(Cur(), "positional argument follows keyword argument");
        }
        GL_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        call.children.push_back(std::move(v));
      }
    }
    Advance();
    return Status::Ok();
  }

  Result<ExprPtr> ParseCall(ExprPtr callee) {
    ExprPtr n = NewExpr(Expr::Kind::kCall, Cur());
    n->line = callee->line;  // errors point at the start of the call, not its '('
    n->column = callee->column;
    n->children.push_back(std::move(callee));
    GL_RETURN_IF_ERROR(ParseArgs(*n));
    GL_RETURN_IF_ERROR(Grow(*n));
    return n;
  }

  // After '|' (already consumed): name[.name](args)? [| ...]. `operand` may be null.
  Result<ExprPtr> ParseFilterChain(ExprPtr operand, bool single) {
    while (true) {
      const Token at = Cur();
      GL_ASSIGN_OR_RETURN(std::string name, ExpectName());
      while (IsOp(".")) {
        Advance();
        GL_ASSIGN_OR_RETURN(std::string more, ExpectName());
        name += "." + more;
      }
      ExprPtr f = NewExpr(Expr::Kind::kFilter, at);
      f->name = name;
      f->children.push_back(std::move(operand));
      if (IsOp("(")) GL_RETURN_IF_ERROR(ParseArgs(*f));
      GL_RETURN_IF_ERROR(Grow(*f));
      operand = std::move(f);
      if (single || !IsOp("|")) return operand;
      Advance();
    }
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        Advance();
        GL_ASSIGN_OR_RETURN(node, ParseFilterChain(std::move(node), true));
      } else if (IsName("is")) {
        const Token at = Cur();
        Advance();
        bool negated = false;
        if (IsName("not")) {
          negated = true;
          Advance();
        }
        GL_ASSIGN_OR_RETURN(std::string name, ExpectName());
        ExprPtr t = NewExpr(Expr::Kind::kTest, at);
        t->name = name;
        t->children.push_back(std::move(node));
        const Token& c = Cur();
        if (IsOp("(")) {
          GL_RETURN_IF_ERROR(ParseArgs(*t));
        } else if ((c.type == Token::Type::kName || c.type == Token::Type::kString ||
                    c.type == Token::Type::kInt || c.type == Token::Type::kFloat || IsOp("[") ||
                    IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and")) {
          if (IsName("is")) return ErrorAt(c, "You cannot chain multiple tests with is");
          GL_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          GL_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          t->children.push_back(std::move(arg));
        }
        if (negated) {
          ExprPtr n = NewExpr(Expr::Kind::kNot, at);
          n->children.push_back(std::move(t));
          t = std::move(n);
        }
        GL_RETURN_IF_ERROR(Grow(*t));
        node = std::move(t);
      } else if (IsOp("(")) {
        GL_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<std::set<std::string>*> names_stack_;
};

}  // namespace

Result<Body> ParseTemplate(std::string_view source) {
  GL_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  Parser parser(std::move(tokens));
  return parser.ParseAll();
}

}  // namespace gemma_local::jinja
