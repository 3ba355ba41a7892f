(function(){
function val(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim():v;}
function cmp(a,b){var x=parseFloat(a),y=parseFloat(b);
 if(!isNaN(x)&&!isNaN(y)&&String(x)===a.trim()&&String(y)===b.trim())return x-y;
 return a.localeCompare(b,undefined,{numeric:true});}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');
  t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
  th.classList.add(asc?'asc':'desc');
  var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(r1,r2){var c=cmp(val(r1.cells[i]),val(r2.cells[i]));return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});
 });});
});
function apply(t){
 var box=document.querySelector('input.filter[data-for="'+t.id+'"]');
 var sel=document.querySelector('select.sevfilter[data-for="'+t.id+'"]');
 var q=box?box.value.toLowerCase():'',s=sel?sel.value:'';
 var shown=0;
 Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
  var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!s||r.getAttribute('data-sev')===s);
  r.classList.toggle('hidden',!ok);if(ok)shown++;});
 var c=document.querySelector('.count[data-for="'+t.id+'"]');if(c)c.textContent=shown+' shown';
}
document.querySelectorAll('input.filter,select.sevfilter').forEach(function(el){
 var t=document.getElementById(el.getAttribute('data-for'));
 if(t)el.addEventListener('input',function(){apply(t);});
});
})();
